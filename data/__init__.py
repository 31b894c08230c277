"""Built-in sample data: the seeded generator (:mod:`data.generate`) and its committed output."""
