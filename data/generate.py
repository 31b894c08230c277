"""Seeded generator of the built-in sample dataset (a platform export, one row per message).

The data imitates a support + lead-generation bot ("Nova", the assistant of an
online shop with business plans) with the figures of the practitioners' guide:

* about 3,000 conversations over 13 weeks on four channels (web, whatsapp,
  messenger, app), heavier on weekdays and in business hours (UTC), with a
  volume spike in week 9: an app bug opens the chat and sends "hi", giving
  ~2.5x the usual volume of short, repetitive, abandoned conversations;
* resolution ~60-70%, escalation ~15-25% with the guide's reason codes at
  realistic turns (most within the first 3 user turns); a ``handoff`` event
  followed by agent messages 1-10 minutes later (a ticket notice after hours);
* abandonments (the user goes silent after a bot question), ratings (1-5 stars
  on web/app, thumbs on whatsapp/messenger) and "did we solve it" answers on
  ~30% of conversations;
* a lead-generation funnel (events ``inquiry`` -> ``qualification`` ->
  ``email`` -> ``phone``, shaped ~100/60/35/25%) with fake contact details
  (``name@example.com``, ``+1 555 0100 xxxx``), a ``goal`` event when a lead
  leaves an e-mail, and downstream conversions with values by utm_source;
* 13 intents plus the fallback ``nlu_fallback``; ``nlu-v1`` answers the first
  7 weeks and the slightly more accurate ``nlu-v2`` the rest; ~15% of user
  messages carry a human ``true_intent`` with realistic confusions
  (billing/refund, order_status/delivery_problem, pricing/book_demo);
* 1.5% test conversations (``test-user-NN``, ``is_test`` true), ~20% of users
  with several conversations (some coming back within 24 hours), template bot
  texts and varied user texts (thanks, complaints, neutral questions, sarcasm),
  a few with ``<b>``, ``*``, ``$`` and ``:`` to exercise literal rendering.

The frame is in the *source file* shape (strings as a CSV has them; booleans
as ``"true"``/``"false"``; ``confidence`` and ``conversion_value`` floats,
``rating`` a nullable integer): the loader validates it like any upload.
Conversation fields are repeated on every row of a conversation.

Only ``random.Random(seed)`` and ``numpy.random.default_rng(seed)`` are used,
so the same arguments always give byte-identical output.

Usage::

    python -m data.generate [--seed 42] [--conversations 3000] [--out data/sample_transcripts.csv.gz]
"""

from __future__ import annotations

import argparse
import gzip
import io
import random
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = [
    "COLUMNS",
    "DEFAULT_PATH",
    "ESCALATION_REASONS",
    "FALLBACK_INTENT",
    "FUNNEL_STAGES",
    "INTENTS",
    "generate",
    "personalise",
    "write_csv",
    "main",
]

#: Where the committed sample lives.
DEFAULT_PATH = Path(__file__).resolve().parent / "sample_transcripts.csv.gz"

#: Columns of the generated export, in file order.
COLUMNS = (
    "conversation_id", "message_id", "timestamp", "speaker", "text", "user_id", "channel",
    "intent", "confidence", "true_intent", "event", "model_version", "is_test",
    "outcome", "goal_achieved", "escalation_reason", "rating", "thumbs", "survey_solved",
    "topic", "converted", "conversion_value", "segment", "utm_source", "utm_campaign",
)

FALLBACK_INTENT = "nlu_fallback"
INTENTS = (
    "greet", "thanks", "deny", "inform", "order_status", "delivery_problem", "billing", "refund",
    "cancel_subscription", "reset_password", "pricing", "book_demo", "talk_to_agent",
)
FUNNEL_STAGES = ("inquiry", "qualification", "email", "phone")
ESCALATION_REASONS = (
    "Unable to answer question", "Customer requested agent",
    "Sentiment detected as negative", "Sensitive topic detected",
)
_UNABLE, _REQUESTED, _NEGATIVE, _SENSITIVE = ESCALATION_REASONS

# --------------------------------------------------------------------------- #
# Calendar and volume
# --------------------------------------------------------------------------- #
_DAY = 86_400
_DOW_WEIGHTS = np.array([1.0, 1.06, 1.02, 0.97, 0.86, 0.46, 0.36])  # Mon..Sun
_HOUR_WEIGHTS = np.array([  # UTC; business hours heavier, some after hours
    0.15, 0.10, 0.08, 0.08, 0.10, 0.16, 0.30, 0.60, 1.00, 1.40, 1.60, 1.60,
    1.40, 1.50, 1.60, 1.50, 1.30, 1.00, 0.85, 0.80, 0.75, 0.60, 0.40, 0.25,
])
_APP_HOUR_WEIGHTS = np.array([  # the app bug fires whenever people open the app
    0.3, 0.2, 0.15, 0.15, 0.2, 0.3, 0.6, 0.9, 1.0, 1.0, 1.0, 1.0,
    1.1, 1.0, 1.0, 1.0, 1.1, 1.2, 1.4, 1.5, 1.5, 1.3, 0.9, 0.5,
])
_SPIKE_FACTOR = 1.5  # extra bug conversations in the spike week, as a multiple of a usual week
_TEST_SHARE = 0.015
_FOLLOW_UP_SHARE = 0.03
_OUTCOME_REPORTED_SHARE = 0.40
_LABELLED_SHARE = 0.15

_KIND_SUPPORT, _KIND_LEAD, _KIND_DRIVEBY, _KIND_BUG, _KIND_TEST = range(5)
_SEGMENTS = ("consumer", "smb", "enterprise")
_SEGMENT_P = np.array([0.55, 0.30, 0.15])
_LEAD_P_BY_SEGMENT = np.array([0.04, 0.24, 0.35])
_DRIVEBY_P = 0.02

# Support conversations: primary (true) intent, its topic and the planned outcome.
_SUPPORT_INTENTS = ("order_status", "delivery_problem", "billing", "refund",
                    "cancel_subscription", "reset_password", "pricing", FALLBACK_INTENT)
_SUPPORT_INTENT_P = np.array([0.21, 0.14, 0.14, 0.11, 0.08, 0.14, 0.07, 0.05])
_DELIVERY_DRIFT_PER_WEEK = 0.12  # delivery problems grow after week 9 (peak-season delays)
_TOPIC = {
    "order_status": "inquiry", "pricing": "inquiry", FALLBACK_INTENT: "inquiry",
    "delivery_problem": "complaint", "billing": "complaint",
    "refund": "request", "cancel_subscription": "request", "reset_password": "request",
}
_OUTCOMES = ("resolved", "escalated", "abandoned", "unresolved")
_OUTCOME_P_BY_TOPIC = {
    "inquiry": (0.82, 0.15, 0.02, 0.01),
    "complaint": (0.61, 0.35, 0.02, 0.02),
    "request": (0.74, 0.22, 0.02, 0.02),
    "oos": (0.15, 0.40, 0.25, 0.20),
}
_V2_SHIFT = (0.03, -0.02, 0.0, -0.01)  # nlu-v2 resolves a little more
_REASON_P_BY_TOPIC = {  # (unable, requested, negative, sensitive)
    "inquiry": (0.40, 0.42, 0.10, 0.08),
    "complaint": (0.14, 0.34, 0.37, 0.15),
    "request": (0.20, 0.45, 0.13, 0.22),
    "oos": (0.70, 0.30, 0.0, 0.0),
}
_SENSITIVE_INTENTS = ("billing", "refund", "cancel_subscription", "reset_password")

_CHANNELS = ("web", "whatsapp", "messenger", "app")
_SUPPORT_CHANNEL_W = (38, 25, 14, 23)
_UTM_SOURCES = ("google", "facebook", "linkedin", "newsletter", "")
_UTM_SOURCE_W = (35, 30, 15, 10, 10)
_UTM_CAMPAIGNS = {
    "google": ("brand_search", "generic_search"),
    "facebook": ("fb_leadgen_q3",),
    "linkedin": ("li_enterprise",),
    "newsletter": ("sept_newsletter", "oct_newsletter"),
}
# Lead quality: facebook brings many leads that rarely convert; the newsletter few that often do.
_CONVERT_P_BY_SOURCE = {"google": 0.20, "facebook": 0.04, "linkedin": 0.25, "newsletter": 0.38, "": 0.15}
_VALUE_BY_SEGMENT = {"consumer": (5.6, 0.4), "smb": (8.0, 0.5), "enterprise": (9.6, 0.5)}  # lognormal

# --------------------------------------------------------------------------- #
# NLU model: per-intent error rates of nlu-v1 (nlu-v2 makes 60% as many errors)
# --------------------------------------------------------------------------- #
_ERROR_RATE = {
    "greet": 0.03, "thanks": 0.05, "deny": 0.12, "inform": 0.10, "order_status": 0.15,
    "delivery_problem": 0.24, "billing": 0.27, "refund": 0.24, "cancel_subscription": 0.15,
    "reset_password": 0.08, "pricing": 0.13, "book_demo": 0.17, "talk_to_agent": 0.06,
}
_V2_ERROR_FACTOR = 0.6
_CONFUSED_WITH = {
    "billing": "refund", "refund": "billing", "order_status": "delivery_problem",
    "delivery_problem": "order_status", "cancel_subscription": "refund", "pricing": "book_demo",
    "book_demo": "pricing", "inform": "order_status", "deny": "thanks", "thanks": "greet",
    "greet": "thanks", "talk_to_agent": "delivery_problem", "reset_password": "billing",
}
_OOS_GUESSES = ("pricing", "order_status", "greet", "delivery_problem", "talk_to_agent")

# --------------------------------------------------------------------------- #
# Texts. Bot texts are templates and repeat; user texts combine many parts.
# --------------------------------------------------------------------------- #
_FIRST_NAMES = ("jane", "john", "maria", "li", "ahmed", "sofia", "lucas", "emma", "noah", "olivia",
                "raj", "yuki", "fatima", "pedro", "anna", "tom", "chloe", "omar", "nina", "ben",
                "priya", "mateo", "sara", "ivan", "grace", "leo", "amara", "jonas", "mei", "paul")
_LAST_NAMES = ("doe", "smith", "garcia", "chen", "khan", "rossi", "muller", "silva", "kim", "novak",
               "patel", "tanaka", "okafor", "dubois", "berg", "walsh", "costa", "haddad", "lee", "moreau")
_AGENTS = ("Sarah", "Tom", "Priya", "Diego", "Mei", "Jonas", "Amira")
_PRODUCTS = ("the blender", "my headphones", "the desk lamp", "a phone case", "the coffee grinder",
             "my running shoes", "the kids' tablet", "the air purifier", "two T-shirts", "the router")
_AMOUNTS = ("$12.99", "$24.50", "$49.99", "$79", "$129.00", "$19.99", "$310.40", "$8.75")

_BOT_GREETING_FIRST = (
    "Hi there! 👋 I'm Nova, Northwind's virtual assistant. How can I help you today?",
    "Hello! I'm Nova, the Northwind assistant. What can I do for you?",
)
_BOT_GREET_REPLY = ("Hello! How can I help you today?", "Hi! What can I do for you?")
_BOT_LEAD_GREETING = (
    "Hi! 👋 Looking at Northwind for your business? I can share pricing or book a demo.",
)
_BOT_ANSWER = {
    "order_status": ("Your order is on its way. You can track it here: https://example.com/track",
                     "I found your order: it shipped yesterday and should arrive within 2-3 business days."),
    "delivery_problem": ("I'm sorry your parcel is late. I've asked the carrier to check; if it doesn't arrive "
                         "within 3 days we'll send a replacement for free.",
                         "Sorry about that! Deliveries are delayed in some areas this week. "
                         "I've flagged your parcel with the courier."),
    "billing": ("I can see the charge. Duplicate charges are usually a pending authorisation and "
                "disappear within 5 business days.",
                "Your last invoice is available under Account > Billing. Charges show as NORTHWIND*SHOP."),
    "refund": ("I've started a refund to your original payment method. It takes 5-10 business days to appear.",
               "Refunds are issued once we receive the return. You can print a free return label at "
               "https://example.com/returns"),
    "cancel_subscription": ("You can cancel anytime under Account > Subscription > Cancel. "
                            "You'll keep access until the end of the billing period.",),
    "reset_password": ("I've sent a password reset link to the e-mail on your account. It's valid for 1 hour.",
                       "Tap 'Forgot password' on the sign-in screen and we'll e-mail you a reset link."),
    "pricing": ("Our plans start at $29/month (Basic) and $79/month (Pro); Enterprise is priced per seat.",
                "Basic is $29/month, Pro is $79/month, and *Enterprise* plans are custom-priced."),
    "book_demo": ("You can book a 30-minute demo here: https://example.com/demo",),
    "greet": _BOT_GREET_REPLY,
    "thanks": ("You're welcome!",),
    "deny": ("Okay! Let me know if there's anything else.",),
    "inform": ("Thanks, let me check that for you.",),
    "talk_to_agent": ("Sure, let me find someone for you.",),
}
_BOT_CLARIFY = {
    "order_status": "Sure! Could you share your order number? It looks like A-12345.",
    "delivery_problem": "I'm sorry to hear that. What's your order number?",
    "billing": "Let me look into it. Which order or invoice number is this about?",
    "refund": "I can help with that. What's the order number of the item you want to return?",
    "reset_password": "No problem. Is it the e-mail address you signed up with that you can't access?",
}
_BOT_ANSWER_EXTRA = ("You'll also get an e-mail with the details.",
                     "You can check this anytime under Account > Orders.",
                     "Tip: the Northwind app shows live updates too.")
_BOT_DETAIL = {
    "order_status": "Most orders arrive within 2-3 business days after shipping.",
    "delivery_problem": "We'll update you by e-mail within 24 hours.",
    "billing": "It usually disappears within 5 business days; if not, we'll refund it.",
    "refund": "Refunds take 5-10 business days depending on your bank.",
    "cancel_subscription": "Yes, you can re-activate it anytime with the same account.",
    "reset_password": "The link is valid for 1 hour. Check your spam folder too.",
    "pricing": "Yes: every plan comes with a 14-day free trial, no card needed.",
    "book_demo": "Demos run Monday to Friday, 09:00-17:00 UTC.",
}
_BOT_CONFIRM = ("Did that answer your question?", "Does that help?", "Is that what you were looking for?")
_BOT_ANYTHING_ELSE = "Is there anything else I can help you with?"
_BOT_CLOSING = ("Glad I could help! Have a great day.", "You're welcome! Take care. 😊",
                "Happy to help. Have a nice day!")
_BOT_FALLBACK = ("Sorry, I didn't quite get that. Could you rephrase?",
                 "Hmm, I'm not sure I understand. Could you say it another way?")
_BOT_REPHRASE = ("Sorry about that! Could you tell me a bit more about what you need?",)
_BOT_OOS = ("I can only help with orders, deliveries, billing and your account. "
            "For anything else, see https://example.com/help",)
_BOT_UNRESOLVED = ("I'm sorry that didn't help. You can also reach us at support@example.com, "
                   "or type *agent* to talk to a person.",
                   "Sorry I couldn't help with that. Our help centre has more: https://example.com/help")
_BOT_HANDOFF = {
    _UNABLE: "I'm not able to help with that, so I'm passing you to a colleague.",
    _REQUESTED: "Sure, I'm connecting you with a member of our team. The usual wait is under 10 minutes.",
    _NEGATIVE: "I'm sorry for the trouble. Let me get a person to help you right away.",
    _SENSITIVE: "This is something a specialist should handle. I'm connecting you with our team now.",
}
_SYSTEM_OFFLINE = ("No agents are available right now (Mon-Fri 08:00-20:00 UTC). A ticket was created "
                   "and we'll reply by e-mail within 24 hours.")
_BOT_QUALIFY = "Happy to help! To point you to the right plan: how many people are on your team?"
_BOT_EMAIL_ASK = "Thanks! What's the best e-mail to send you pricing details and a demo link?"
_BOT_EMAIL_DECLINED = ("No problem! All plans are at https://example.com/pricing: Basic is $29/month, Pro $79/month.",)
_BOT_GOAL = "Got it: the pricing guide is on its way to your inbox."
_BOT_PHONE_ASK = "Would you like a specialist to call you? If so, what's the best phone number?"
_BOT_PHONE_DECLINED = ("Sounds good, talk soon!",)
_BOT_PHONE_ACK = "Perfect, a specialist will call you within one business day. Thanks for chatting with us!"
_BOT_BROWSING = ("No problem! Have a look around, and ping me if you have questions.",)
_BOT_BUG_FALLBACK = _BOT_FALLBACK[0]

_AGENT_INTRO = ("Hi, this is {agent} from the support team. I've read the conversation, give me a moment to check.",
                "Hello! {agent} here. Thanks for waiting, I'm looking into it now.")
_AGENT_SALES_INTRO = ("Hi, I'm {agent} from the sales team. Happy to help: what are you looking for?",)
_AGENT_FIX = {
    "order_status": "Thanks for waiting. Your order left our warehouse this morning; tracking updates tonight.",
    "delivery_problem": "I've arranged a replacement with express shipping, no charge. It should arrive in 2 days.",
    "billing": "I've reversed the duplicate charge. You'll see it back on your card in 3-5 days.",
    "refund": "I've issued the refund now. It should reach your account within 5 business days.",
    "cancel_subscription": "Done: your subscription is cancelled and you won't be charged again.",
    "reset_password": "I've unlocked your account and sent a new reset link to your e-mail.",
    "pricing": "For your team size I'd suggest Pro; I've sent you a quote by e-mail.",
    "book_demo": "I've booked you a demo for Thursday at 15:00 UTC; the invite is in your inbox.",
    FALLBACK_INTENT: "I've passed this to the right team; they'll e-mail you today.",
}
_AGENT_ANYTHING_ELSE = "Is there anything else I can do for you today?"
_AGENT_CLOSING = ("You're welcome, have a nice day!", "Glad we sorted it out. Take care!")
_AGENT_SORRY = ("I understand, and I'm sorry. I've escalated this to my manager; you'll get an e-mail today.",)

# User texts: {order}, {amount}, {product} and {n} are filled in.
_USER_ASK = {
    "order_status": {
        "neutral": ("Where is my order?", "Can you tell me when my order will arrive?",
                    "What's the status of order {order}?", "has my order shipped yet",
                    "I ordered {product} last week, when will it come?", "Order #{order}: any update?",
                    "when does my package arrive", "Is there a tracking number for my order?"),
        "frustrated": ("Where is my order?? It's been over a week!", "Order #{order}: *still* no update. What is going on?",
                       "I've been waiting forever for {product}. Where is it?"),
        "polite": ("Could you please check the status of my order {order}?",
                   "I'd love an update on my order if possible."),
        "sarcastic": ("Oh wonderful, my order is still 'processing' after 10 days. Great job.",
                      "Love how my order #{order} just vanished. Amazing tracking system."),
    },
    "delivery_problem": {
        "neutral": ("My package hasn't arrived yet.", "The parcel says delivered but I didn't get it.",
                    "{product} arrived damaged.", "I received the wrong item.",
                    "The courier never came today.", "My delivery is late"),
        "frustrated": ("My parcel is 2 weeks late and nobody answers my emails!",
                       "{product} arrived broken. This is the second time!",
                       "Tracking says delivered. It was NOT delivered. Terrible service.",
                       "<b>urgent</b> my delivery is missing and I need it for tomorrow"),
        "polite": ("Hi, I think my parcel got lost, could you help me?",),
        "sarcastic": ("Oh great, my package has been 'out for delivery' for 5 days. Love it.",
                      "Wonderful, another delivery that never showed up. Fantastic job, really.",
                      "Thanks so much for delivering {product} to my neighbour's bin. Brilliant."),
    },
    "billing": {
        "neutral": ("I was charged twice for my order.", "Why was I charged {amount}?",
                    "I don't recognise a charge of {amount} on my card.", "Can I get a copy of my invoice?",
                    "There's a charge from NORTHWIND*SHOP I don't understand", "my bill looks wrong"),
        "frustrated": ("You charged me TWICE. Fix it now.", "Why on earth was I charged {amount}? I never ordered that!",
                       "I'm really annoyed, my card was charged {amount} two times."),
        "polite": ("Hello, I think I was billed twice, could you please check?",),
        "sarcastic": ("Great, charged twice again. Really loving this billing system.",),
    },
    "refund": {
        "neutral": ("I want a refund for {product}.", "How do I return {product}?",
                    "I'd like my money back for order {order}.", "Can I get a refund?",
                    "how long does a refund take", "I returned {product} but got no refund yet"),
        "frustrated": ("I returned it a month ago and still no refund. Unacceptable!",
                       "Give me my money back. {product} is junk."),
        "polite": ("Hi! I'd like to return {product}, is that possible?",),
        "sarcastic": ("Still waiting for my refund. Super fast service, well done.",),
    },
    "cancel_subscription": {
        "neutral": ("How do I cancel my subscription?", "I want to cancel my plan.",
                    "please cancel my membership", "Can I stop the monthly renewal?"),
        "frustrated": ("Cancel my subscription immediately. I've tried three times already!",),
        "polite": ("Hi, I'd like to cancel my subscription please, thanks.",),
    },
    "reset_password": {
        "neutral": ("I forgot my password.", "I can't log in to my account.", "How do I reset my password?",
                    "password reset link doesn't work", "My account is locked"),
        "frustrated": ("I've reset my password 4 times and it STILL doesn't work!",),
        "polite": ("Hello, could you help me reset my password please?",),
    },
    "pricing": {
        "neutral": ("How much is the Pro plan?", "What are your prices?", "Is there a free trial?",
                    "how much for 50 users", "Do you offer discounts for nonprofits?",
                    "What's the difference between Basic and Pro?", "Prices: is it $29 or $79 per month?"),
        "frustrated": ("Why is the price different from the ad?",),
        "polite": ("Hi! Could you tell me about your pricing please?",),
    },
    "book_demo": {
        "neutral": ("Can I book a demo?", "I'd like to see a demo for my team.", "Do you do product demos?",
                    "Can someone show us how it works?", "I saw your ad, can I get a demo"),
        "frustrated": ("I asked for a demo last week and nobody got back to me.",),
        "polite": ("Hi there! We'd love to book a demo, when are you available?",),
    },
    FALLBACK_INTENT: {
        "neutral": ("what's the weather tomorrow", "Can you tell me a joke?", "do you ship to mars lol",
                    "asdfgh", "Who won the game last night?", "my cat ate the charger cable",
                    "Is this a real person?", "what is the meaning of life"),
        "frustrated": ("Useless bot. Just answer the question.",),
        "polite": ("Hi, quick question: do you sell gift cards for restaurants?",),
    },
}
_USER_REPHRASE = {
    "order_status": ("I mean the delivery date of my order", "tracking for my order please", "my order, where is it"),
    "delivery_problem": ("the parcel is missing", "it never arrived", "package lost"),
    "billing": ("double charge on my card", "the invoice amount is wrong", "question about a charge"),
    "refund": ("return and refund", "I want to send it back", "money back please"),
    "cancel_subscription": ("stop my subscription", "end my plan", "cancel membership"),
    "reset_password": ("can't sign in", "login problem", "new password"),
    "pricing": ("cost of the plans", "price list", "how much does it cost"),
    "book_demo": ("schedule a demo", "product demo please", "meeting to see the product"),
    FALLBACK_INTENT: ("never mind, just something else", "forget it, other question", "it's complicated"),
}
_USER_SENSITIVE = {
    "billing": ("Someone used my card on your site without permission. This is fraud.",
                "I need to file a legal complaint about these charges."),
    "refund": ("My mother passed away and I need to return the things she ordered.",),
    "cancel_subscription": ("My husband passed away and I need to close his account.",
                            "I want all my personal data deleted under GDPR."),
    "reset_password": ("I think my account was hacked, there are orders I didn't make!",),
}
_USER_GREET = ("hi", "hello", "Hi!", "hey there", "good morning", "hello?", "Hi Nova", "hey")
_USER_THANKS = ("yes thanks!", "Perfect, thank you so much!", "great, that worked 👍", "ok thanks",
                "That helps, cheers.", "yes, thank you!", "Awesome, thanks a lot :)", "thx",
                "Brilliant, you're a star!", "Yes that's it, thanks")
_USER_NOTHING_ELSE = ("no that's all, thanks", "nope, all good!", "No, thank you!")
_USER_DENY_WRONG = ("No, that's not what I asked.", "no", "That's not my question", "wrong answer",
                    "Not really.", "?? that's not what I meant")
_USER_DENY_END = ("no, that doesn't help at all", "Not really, no.", "That doesn't answer my question.",
                  "no", "wow, super helpful 🙄", "Not helpful.")
_USER_FINAL_ANGRY = ("forget it, this is useless", "I'll just call you then. Waste of time.",
                     "ugh. never mind.", "Thanks for nothing.", "Great, so helpful. Not.",
                     "Wow, what a fantastic bot 🙄")
_USER_AGENT_REQUEST = ("I want to talk to a human.", "agent please", "AGENT", "Can I speak to a real person?",
                       "representative!!!", "Let me talk to someone from your team", "human please",
                       "Is there a person I can chat with?")
_USER_NEGATIVE_PUSH = ("That's not good enough. I've been waiting for weeks!",
                       "This is ridiculous, nobody ever answers. I'm so angry.",
                       "You people are useless. Third time I'm asking!",
                       "I'm extremely disappointed with this service.",
                       "Terrible. Absolutely terrible. I want this fixed NOW.")
_USER_TO_AGENT = ("Thanks. It's about order {order}.", "ok, the order number is {order}",
                  "Hi. Yes, please check it.", "Hello, thanks for picking this up.",
                  "It's been a frustrating week, honestly.", "Sure, take your time.")
_USER_AGENT_THANKS = ("Thank you so much, that's great!", "Thanks, appreciated.", "perfect thanks",
                      "Great, thanks for your help!", "ok thank you")
_USER_AGENT_UNHAPPY = ("That still doesn't fix my problem.", "Fine. Whatever.",
                       "I expected better, honestly.")
_USER_INFORM_ORDER = ("It's {order}", "{order}", "order number is {order}", "sure: {order}",
                      "#{order}", "I think it's {order}")
_USER_INFORM_EMAIL = ("yes, that's the one", "yes", "Yes, the gmail one", "yep")
_USER_DETAIL = ("how long will that take?", "ok and will I get an email about it?", "and if that doesn't work?",
                "Can I do that from the app?", "is there a fee for that?", "ok. when exactly?",
                "will I get a confirmation?", "and what about the shipping cost: do I get that back?")
_USER_CONTEXT = ("I ordered it last Monday.", "It's for a birthday on Saturday.", "I already checked my spam folder.",
                 "This is the second time this month.", "I'm on the Pro plan.", "I paid with PayPal.",
                 "I'm writing from my phone, sorry for typos", "my account email is the old one")
_PRESALES = (  # (user question, bot answer)
    ("Is there a free trial?", "Yes: 14 days free on every plan, no card needed."),
    ("Do you integrate with Shopify?", "Yes, we integrate with Shopify, WooCommerce and Zapier."),
    ("Can we pay yearly?", "Yes, yearly billing saves 20%."),
    ("Is my data stored in the EU?", "Yes, EU customers' data stays in Frankfurt."),
    ("Do you have an API?", "Yes: a REST API and webhooks are included from the Pro plan."),
    ("Can I cancel anytime?", "Yes, plans are monthly and you can cancel anytime."),
)
_USER_ALSO = ("Also, ", "One more thing: ", "And ", "Another question: ")
_USER_QUAL = ("about {n} people", "just me", "we're a team of {n}", "{n}+ across 3 offices",
              "around {n}, growing fast", "{n}", "roughly {n} employees")
_USER_EMAIL = ("sure, it's {email}", "{email}", "you can use {email}", "{email} thanks",
               "Email: {email}")
_USER_PHONE = ("{phone}", "call me at {phone}", "sure: {phone}", "My number is {phone}")
_USER_DECLINE_EMAIL = ("I'd rather not share my email yet", "no email, just looking", "not now")
_USER_DECLINE_PHONE = ("no thanks, email is fine", "No call please.", "email is better for me")
_USER_BROWSING = ("ok thanks, I'll check the website", "just browsing, thanks!", "cool, thanks")
_USER_SALES_REQUEST = ("Can I just talk to someone from sales?", "I'd prefer to speak with a sales rep.")
_USER_BUG_FOLLOW = ("why does this chat keep popping up??", "I didn't open this chat",
                    "stop opening this every time I open the app", "??")
_USER_TEST = ("test", "testing 1 2 3", "QA: checking the new refund flow, please ignore",
              "test order status", "ignore - load test")

_POLITE_PREFIX = ("Hi! ", "Hello, ", "Hi there, ", "Good morning! ")
_POLITE_SUFFIX = (" Thanks!", " Thank you 🙂", " thanks in advance", " 🙏", " Cheers!")
_FRUSTRATED_SUFFIX = (" This is ridiculous.", " Seriously??", " 😡", " I'm really annoyed.",
                      " Worst service ever.", " Not happy.")


def _fill(template: str, pyr: random.Random) -> str:
    if "{" not in template:
        return template
    return template.format(
        order=f"A-{pyr.randint(10000, 99999)}",
        amount=pyr.choice(_AMOUNTS),
        product=pyr.choice(_PRODUCTS),
        n=pyr.choice((3, 5, 8, 12, 20, 25, 40, 60, 150, 300)),
    )


def _decorate(text: str, tone: str, pyr: random.Random) -> str:
    """Vary a user text the way people type: casing, punctuation, greetings, emoji."""
    r = pyr.random()
    greeted = text.lower().startswith(("hi", "hello", "hey", "good "))
    if tone == "polite":
        if r < 0.4 and not greeted:
            text = pyr.choice(_POLITE_PREFIX) + text[0].lower() + text[1:]
        if pyr.random() < 0.5:
            text = _end_sentence(text) + pyr.choice(_POLITE_SUFFIX)
    elif tone == "frustrated":
        if r < 0.45:
            text = _end_sentence(text) + pyr.choice(_FRUSTRATED_SUFFIX)
        elif r < 0.52:
            text = text.upper()
    elif tone == "neutral":
        if r < 0.15:
            text = text.lower()
        elif r < 0.25:
            text = text.rstrip(".?!")
        elif r < 0.32 and not greeted:
            text = pyr.choice(("hi, ", "Hello. ", "hey ")) + text
    return text


def _end_sentence(text: str) -> str:
    return text if text.endswith((".", "!", "?", ")", "🙂", "🙏")) else text + "."


def _tone_of(mood: str, pyr: random.Random) -> str:
    """The tone of one user message given the conversation's mood."""
    r = pyr.random()
    if mood == "frustrated":
        return "frustrated" if r < 0.75 else "neutral"
    if mood == "sarcastic":
        return "sarcastic" if r < 0.6 else "frustrated"
    if mood == "happy":
        return "polite" if r < 0.8 else "neutral"
    return "neutral" if r < 0.85 else "polite"


def _ask_text(intent: str, tone: str, pyr: random.Random) -> str:
    bank = _USER_ASK[intent]
    if tone == "sarcastic" and "sarcastic" not in bank:
        tone = "frustrated"
    texts = bank.get(tone) or bank["neutral"]
    return _decorate(_fill(pyr.choice(texts), pyr), tone, pyr)


# --------------------------------------------------------------------------- #
# Message builder
# --------------------------------------------------------------------------- #
class _Out:
    """Column lists of all generated messages (one entry per message)."""

    __slots__ = ("conv", "t", "speaker", "text", "intent", "confidence", "true_intent", "event")

    def __init__(self) -> None:
        for name in self.__slots__:
            setattr(self, name, [])


class _Conv:
    """Appends the messages of one conversation to :class:`_Out`, keeping the clock."""

    __slots__ = ("out", "idx", "t", "pyr", "v2", "user_turns", "last")

    def __init__(self, out: _Out, idx: int, start: int, pyr: random.Random, v2: bool) -> None:
        self.out, self.idx, self.t, self.pyr, self.v2 = out, idx, start, pyr, v2
        self.user_turns = 0
        self.last = None  # speaker of the last message

    def _add(self, speaker, text, intent=None, confidence=None, true_intent=None, event=None) -> None:
        o = self.out
        o.conv.append(self.idx)
        o.t.append(self.t)
        o.speaker.append(speaker)
        o.text.append(text)
        o.intent.append(intent)
        o.confidence.append(confidence)
        o.true_intent.append(true_intent)
        o.event.append(event)
        self.last = speaker

    def user(self, text: str, true_intent: str, *, event=None, force=None, delay=None) -> str:
        """A user message; returns the NLU's predicted intent."""
        if self.last is not None:
            self.t += delay if delay is not None else int(self.pyr.lognormvariate(2.9, 0.75)) + 3
        pred, conf = self._predict(true_intent, force)
        self.user_turns += 1
        self._add("user", text, pred, conf, true_intent, event)
        return pred

    def bot(self, text: str, *, event=None) -> None:
        if self.last is not None:
            self.t += 1 if self.last == "bot" else self.pyr.randint(1, 3)
        self._add("bot", text, event=event)

    def agent(self, text: str, *, wait=None) -> None:
        self.t += wait if wait is not None else self.pyr.randint(20, 110)
        self._add("agent", text)

    def system(self, text: str, *, event=None, wait=None) -> None:
        self.t += wait if wait is not None else self.pyr.randint(1, 5)
        self._add("system", text, event=event)

    def _predict(self, true: str, force):
        pyr = self.pyr
        if force == "fallback" or (force == "correct" and true == FALLBACK_INTENT):
            # the fallback fires when no intent is confident enough
            return FALLBACK_INTENT, round(pyr.uniform(0.05, 0.39), 3)
        if force == "correct":
            return true, _correct_confidence(pyr)
        if true == FALLBACK_INTENT:
            if pyr.random() < (0.72 if self.v2 else 0.55):
                return FALLBACK_INTENT, round(pyr.uniform(0.05, 0.39), 3)
            return pyr.choice(_OOS_GUESSES), _wrong_confidence(pyr)
        err = _ERROR_RATE[true] * (_V2_ERROR_FACTOR if self.v2 else 1.0)
        if pyr.random() >= err:
            return true, _correct_confidence(pyr)
        r = pyr.random()
        if r < 0.2:
            return FALLBACK_INTENT, round(pyr.uniform(0.05, 0.39), 3)
        if r < 0.8:
            return _CONFUSED_WITH[true], _wrong_confidence(pyr)
        other = pyr.choice(INTENTS)
        return (other if other != true else _CONFUSED_WITH[true]), _wrong_confidence(pyr)


def _correct_confidence(pyr: random.Random) -> float:
    if pyr.random() < 0.9:
        return round(min(0.999, max(0.70, pyr.gauss(0.89, 0.06))), 3)
    return round(pyr.uniform(0.45, 0.75), 3)


def _wrong_confidence(pyr: random.Random) -> float:
    return round(min(0.95, max(0.40, pyr.gauss(0.58, 0.13))), 3)


# --------------------------------------------------------------------------- #
# Conversation flows
# --------------------------------------------------------------------------- #
class _Plan:
    """Per-conversation decisions taken before its messages are written."""

    __slots__ = ("kind", "intent", "outcome", "reason", "mood", "channel", "segment", "utm_source",
                 "agents_online", "follow_up", "stage", "lead_escalates")


def _opening(c: _Conv, p: _Plan) -> None:
    pyr = c.pyr
    if p.channel in ("web", "app") and pyr.random() < 0.55:
        c.bot(pyr.choice(_BOT_GREETING_FIRST))
    if pyr.random() < 0.45:
        c.user(pyr.choice(_USER_GREET), "greet")
        c.bot(pyr.choice(_BOT_GREET_REPLY))


def _state_problem(c: _Conv, p: _Plan, *, force_understood: bool, max_retries: int = 2) -> bool:
    """The user states the problem; NLU misses lead to a fallback or wrong answer and a rephrase."""
    pyr = c.pyr
    if p.follow_up and pyr.random() < 0.7:
        text = pyr.choice(("I asked yesterday and still nothing. ", "Me again. ", "Following up: ")) \
            + _ask_text(p.intent, _tone_of(p.mood, pyr), pyr)
    else:
        text = _ask_text(p.intent, _tone_of(p.mood, pyr), pyr)
    pred = c.user(text, p.intent)
    if pyr.random() < 0.3:  # double-texting: a detail before the bot answers
        c.user(_decorate(pyr.choice(_USER_CONTEXT), "neutral", pyr), "inform", delay=pyr.randint(4, 25))
    tries = 0
    while pred != p.intent and tries < max_retries:
        if pred == FALLBACK_INTENT:
            c.bot(pyr.choice(_BOT_FALLBACK))
        else:
            c.bot(pyr.choice(_BOT_ANSWER.get(pred, _BOT_FALLBACK)))
            c.user(pyr.choice(_USER_DENY_WRONG), "deny", force="correct")
            c.bot(_BOT_REPHRASE[0])
        tries += 1
        last_try = tries == max_retries
        pred = c.user(_decorate(pyr.choice(_USER_REPHRASE[p.intent]), "neutral", pyr), p.intent,
                      force="correct" if (last_try and force_understood) else None)
    return pred == p.intent


def _survey(c: _Conv, p: _Plan, fields: dict, quality: str) -> None:
    """Post-conversation survey (system row + conversation fields)."""
    pyr = c.pyr
    dist = {
        "great": (0.02, 0.03, 0.10, 0.35, 0.50),
        "good": (0.05, 0.07, 0.18, 0.35, 0.35),
        "mixed": (0.06, 0.10, 0.24, 0.34, 0.26),
        "bad": (0.32, 0.30, 0.20, 0.11, 0.07),
    }[quality]
    rating = pyr.choices((1, 2, 3, 4, 5), dist)[0]
    if p.mood in ("frustrated", "sarcastic") and rating > 1 and pyr.random() < 0.35:
        rating -= 1
    solved_p = {"great": 0.93, "good": 0.85, "mixed": 0.65, "bad": 0.12}[quality]
    solved = None if pyr.random() < 0.1 else ("true" if pyr.random() < solved_p else "false")
    solved_text = {"true": "yes", "false": "no", None: "-"}[solved]
    if p.channel in ("web", "app"):
        fields["rating"] = rating
        text = f"Survey: rated {rating}/5 · solved: {solved_text}"
    else:
        thumbs = "up" if rating >= 4 or (rating == 3 and pyr.random() < 0.5) else "down"
        fields["thumbs"] = thumbs
        text = f"Survey: {'👍' if thumbs == 'up' else '👎'} · solved: {solved_text}"
    fields["survey_solved"] = solved
    c.system(text, event="survey", wait=pyr.randint(15, 180))


_SURVEY_P = {"resolved": 0.40, "escalated": 0.42, "unresolved": 0.35}


def _handoff(c: _Conv, p: _Plan, reason: str, fields: dict, *, sales: bool = False) -> str:
    """Bot hands off; an agent answers 1-10 minutes later (or a ticket notice after hours)."""
    pyr = c.pyr
    c.bot(_BOT_HANDOFF[reason], event="handoff")
    fields["escalation_reason"] = reason
    if not p.agents_online:
        c.system(_SYSTEM_OFFLINE, wait=pyr.randint(2, 8))
        return "bad"
    if pyr.random() < 0.08:  # user gives up while waiting
        if pyr.random() < 0.5:
            c.user(pyr.choice(("hello??", "anyone there?", "still waiting...")), "greet",
                   delay=pyr.randint(90, 240))
        return "none"
    wait = min(600, max(60, int(pyr.lognormvariate(5.2, 0.5))))
    agent = pyr.choice(_AGENTS)
    intro = _AGENT_SALES_INTRO if sales else _AGENT_INTRO
    c.agent(pyr.choice(intro).format(agent=agent), wait=wait)
    c.user(_fill(pyr.choice(_USER_TO_AGENT), pyr), "inform", delay=pyr.randint(10, 90))
    for _ in range(pyr.choice((0, 1, 1, 2, 3))):
        c.agent(pyr.choice(("Thanks, one moment please.", "Let me check that with the warehouse.",
                            "I see it now.", "Could you confirm the e-mail on the account?")))
        c.user(pyr.choice(("ok", "sure", "yes, same as before", "thanks")), "inform",
               delay=pyr.randint(10, 60))
    c.agent(_AGENT_FIX.get(p.intent, _AGENT_FIX[FALLBACK_INTENT]))
    success = pyr.random() < (0.6 if p.mood in ("frustrated", "sarcastic") else 0.8)
    if success:
        c.user(pyr.choice(_USER_AGENT_THANKS), "thanks", delay=pyr.randint(10, 80))
        if pyr.random() < 0.5:
            c.agent(_AGENT_ANYTHING_ELSE)
            c.user(pyr.choice(_USER_NOTHING_ELSE), "thanks", delay=pyr.randint(8, 60))
        c.agent(pyr.choice(_AGENT_CLOSING))
        return "good"
    c.user(pyr.choice(_USER_AGENT_UNHAPPY), "deny", delay=pyr.randint(10, 80))
    c.agent(_AGENT_SORRY[0])
    return "bad"


def _answer(c: _Conv, p: _Plan, *, abandon_at_clarify: bool = False) -> bool:
    """Clarify (order number ...), then the bot's answer. False when the user left at the clarification."""
    pyr = c.pyr
    if p.intent == FALLBACK_INTENT:
        c.bot(_BOT_OOS[0])
        return True
    if p.intent in _BOT_CLARIFY and pyr.random() < 0.75:
        c.bot(_BOT_CLARIFY[p.intent])
        if abandon_at_clarify:
            return False
        if p.intent == "reset_password":
            c.user(pyr.choice(_USER_INFORM_EMAIL), "inform")
        else:
            c.user(_fill(pyr.choice(_USER_INFORM_ORDER), pyr), "inform")
    c.bot(pyr.choice(_BOT_ANSWER[p.intent]))
    if pyr.random() < 0.35:
        c.bot(pyr.choice(_BOT_ANSWER_EXTRA))
    if pyr.random() < 0.4:
        c.user(_decorate(pyr.choice(_USER_DETAIL), _tone_of(p.mood, pyr), pyr), p.intent)
        c.bot(_BOT_DETAIL[p.intent])
    return True


def _escalated_support(c: _Conv, p: _Plan, fields: dict) -> None:
    """Escalation at a realistic turn: early (turns 1-3) or after an answer that did not help."""
    pyr = c.pyr
    reason = p.reason
    late = pyr.random() < {_REQUESTED: 0.35, _NEGATIVE: 0.55, _UNABLE: 0.15, _SENSITIVE: 0.15}[reason]
    if late:
        _state_problem(c, p, force_understood=reason != _UNABLE, max_retries=1)
        _answer(c, p)
        c.bot(pyr.choice(_BOT_CONFIRM))
        c.user(pyr.choice(_USER_DENY_END), "deny")
        if reason == _REQUESTED:
            c.bot(pyr.choice(_BOT_UNRESOLVED))
            c.user(_decorate(pyr.choice(_USER_AGENT_REQUEST), _tone_of(p.mood, pyr), pyr), "talk_to_agent")
        elif reason == _NEGATIVE:
            for _ in range(pyr.choice((1, 1, 2))):
                c.bot(pyr.choice(_BOT_REPHRASE))
                c.user(pyr.choice(_USER_NEGATIVE_PUSH), pyr.choice(("deny", p.intent)))
        elif reason == _UNABLE:
            c.bot(_BOT_REPHRASE[0])
            c.user(_decorate(pyr.choice(_USER_REPHRASE[p.intent]), "neutral", pyr), p.intent, force="fallback")
        else:
            c.user(pyr.choice(_USER_SENSITIVE[p.intent]), p.intent)
    elif reason == _REQUESTED:
        # turn of the request: 1 (50%), 2 (35%), 3 (15%)
        r = pyr.random()
        if r >= 0.5:
            _state_problem(c, p, force_understood=True, max_retries=0)
            if r >= 0.85:
                c.bot(pyr.choice(_BOT_ANSWER.get(p.intent, _BOT_OOS)))
                c.user(pyr.choice(_USER_DENY_WRONG), "deny")
        c.user(_decorate(pyr.choice(_USER_AGENT_REQUEST), _tone_of(p.mood, pyr), pyr), "talk_to_agent")
    elif reason == _UNABLE:
        c.user(_ask_text(p.intent, _tone_of(p.mood, pyr), pyr), p.intent, force="fallback")
        for _ in range(pyr.choice((1, 1, 2))):
            c.bot(pyr.choice(_BOT_FALLBACK))
            c.user(_decorate(pyr.choice(_USER_REPHRASE[p.intent]), "neutral", pyr), p.intent, force="fallback")
    elif reason == _NEGATIVE:
        _state_problem(c, p, force_understood=True, max_retries=0)
        c.bot(pyr.choice(_BOT_ANSWER.get(p.intent, _BOT_OOS)))
        c.user(pyr.choice(_USER_NEGATIVE_PUSH), pyr.choice(("deny", p.intent)))
    else:  # sensitive, at turn 1 or 2
        if pyr.random() < 0.3:
            c.user(pyr.choice(_USER_GREET), "greet")
            c.bot(pyr.choice(_BOT_GREET_REPLY))
        c.user(pyr.choice(_USER_SENSITIVE[p.intent]), p.intent)
    quality = _handoff(c, p, reason, fields)
    if quality != "none" and pyr.random() < _SURVEY_P["escalated"]:
        _survey(c, p, fields, quality)


def _support(c: _Conv, p: _Plan, fields: dict) -> None:
    pyr = c.pyr
    _opening(c, p)
    if p.outcome == "escalated":
        _escalated_support(c, p, fields)
        return
    understood = _state_problem(c, p, force_understood=p.outcome == "resolved")
    if p.outcome == "in_progress":
        return
    quality = "mixed"
    if not _answer(c, p, abandon_at_clarify=p.outcome == "abandoned" and pyr.random() < 0.5):
        return
    if p.outcome == "abandoned":
        c.bot(pyr.choice(_BOT_CONFIRM) if p.intent != FALLBACK_INTENT else _BOT_ANYTHING_ELSE)
        return
    if p.outcome == "unresolved" or not understood:
        c.bot(pyr.choice(_BOT_CONFIRM))
        c.user(pyr.choice(_USER_DENY_END), "deny")
        c.bot(pyr.choice(_BOT_UNRESOLVED))
        if pyr.random() < 0.5:
            c.user(pyr.choice(_USER_FINAL_ANGRY), "deny")
        quality = "bad"
    elif p.intent != FALLBACK_INTENT and pyr.random() < 0.75:  # confirmed resolution
        c.bot(pyr.choice(_BOT_CONFIRM))
        c.user(_decorate(pyr.choice(_USER_THANKS), "neutral", pyr), "thanks")
        r = pyr.random()
        if r < 0.5:  # a second question
            other = pyr.choice(("order_status", "reset_password", "pricing", "refund", "cancel_subscription"))
            c.bot(_BOT_ANYTHING_ELSE)
            c.user(pyr.choice(_USER_ALSO) + _ask_text(other, "neutral", pyr).lower(), other)
            c.bot(pyr.choice(_BOT_ANSWER[other]))
            c.user(_decorate(pyr.choice(_USER_THANKS), "neutral", pyr), "thanks")
        elif r < 0.7:
            c.bot(_BOT_ANYTHING_ELSE)
            c.user(pyr.choice(_USER_NOTHING_ELSE), "thanks")
        c.bot(pyr.choice(_BOT_CLOSING), event="goal")
        fields["goal_achieved"] = "true"
        quality = "great"
    else:  # implied resolution: the user leaves after the answer
        if pyr.random() < 0.4:
            c.user(pyr.choice(("ok", "ok thanks", "got it", "alright 👍", "k", "ok, will try that")), "thanks")
            c.bot(pyr.choice(_BOT_CLOSING))
        quality = "good"
    if p.outcome in _SURVEY_P and pyr.random() < _SURVEY_P[p.outcome]:
        _survey(c, p, fields, quality)


def _email(pyr: random.Random) -> str:
    first, last = pyr.choice(_FIRST_NAMES), pyr.choice(_LAST_NAMES)
    style = pyr.random()
    local = f"{first}.{last}" if style < 0.5 else (f"{first}{pyr.randint(1, 99)}" if style < 0.8 else f"{first[0]}{last}")
    return f"{local}@example.com"


def _phone(pyr: random.Random) -> str:
    digits = f"{pyr.randint(0, 9999):04d}"
    return f"+1 555 0100 {digits}" if pyr.random() < 0.7 else f"+1-555-0100-{digits}"


def _lead(c: _Conv, p: _Plan, fields: dict) -> None:
    """Lead generation: inquiry -> qualification -> email -> phone (stage = last one reached)."""
    pyr = c.pyr
    if p.channel == "web" and pyr.random() < 0.6:
        c.bot(_BOT_LEAD_GREETING[0])
    c.user(_ask_text(p.intent, _tone_of(p.mood, pyr), pyr), p.intent, event="inquiry")
    c.bot(pyr.choice(_BOT_ANSWER[p.intent]))
    for _ in range(pyr.choice((0, 1, 1, 2, 2))):
        question, answer = pyr.choice(_PRESALES)
        c.user(_decorate(question, "neutral", pyr), "pricing")
        c.bot(answer)
    fields["goal_achieved"] = "false"
    if p.lead_escalates:
        c.user(pyr.choice(_USER_SALES_REQUEST), "talk_to_agent")
        quality = _handoff(c, p, _REQUESTED, fields, sales=True)
        if quality != "none" and pyr.random() < 0.3:
            _survey(c, p, fields, quality)
        return
    c.bot(_BOT_QUALIFY)
    if p.stage == 0:
        if p.outcome == "resolved":
            c.user(_decorate(pyr.choice(_USER_BROWSING), "neutral", pyr), "thanks")
            c.bot(_BOT_BROWSING[0])
        return
    c.user(_fill(pyr.choice(_USER_QUAL), pyr), "inform", event="qualification")
    c.bot(_BOT_EMAIL_ASK)
    if p.stage == 1:
        if p.outcome == "unresolved":
            c.user(pyr.choice(_USER_DECLINE_EMAIL), "deny")
            c.bot(_BOT_EMAIL_DECLINED[0])
        return
    c.user(pyr.choice(_USER_EMAIL).format(email=_email(pyr)), "inform", event="email")
    c.bot(_BOT_GOAL, event="goal")
    fields["goal_achieved"] = "true"
    c.bot(_BOT_PHONE_ASK)
    if p.stage == 2:
        if pyr.random() < 0.6:
            c.user(pyr.choice(_USER_DECLINE_PHONE), "deny")
            c.bot(_BOT_PHONE_DECLINED[0])
    else:
        c.user(pyr.choice(_USER_PHONE).format(phone=_phone(pyr)), "inform", event="phone")
        c.bot(_BOT_PHONE_ACK)
    if pyr.random() < 0.3:
        _survey(c, p, fields, "great" if p.stage == 3 else "good")


def _driveby(c: _Conv, p: _Plan, fields: dict) -> None:
    pyr = c.pyr
    r = pyr.random()
    if p.channel in ("web", "app") or r < 0.4:
        c.bot(pyr.choice(_BOT_GREETING_FIRST))
    if r < 0.4:
        return  # opened the widget, never typed
    if r < 0.8:
        c.user(pyr.choice(_USER_GREET), "greet")
        c.bot(pyr.choice(_BOT_GREET_REPLY))
        return
    c.user(_ask_text(FALLBACK_INTENT, "neutral", pyr), FALLBACK_INTENT)
    c.bot(pyr.choice(_BOT_FALLBACK))


def _bug(c: _Conv, p: _Plan, fields: dict) -> None:
    pyr = c.pyr
    c.user("hi", "greet", force="correct")
    c.bot(_BOT_GREET_REPLY[0])
    if pyr.random() < 0.25:
        c.user(pyr.choice(_USER_BUG_FOLLOW), FALLBACK_INTENT)
        c.bot(_BOT_BUG_FALLBACK)


def _test(c: _Conv, p: _Plan, fields: dict) -> None:
    pyr = c.pyr
    for _ in range(pyr.randint(1, 3)):
        intent = pyr.choice(("greet", "order_status", "refund", FALLBACK_INTENT))
        c.user(pyr.choice(_USER_TEST), intent)
        c.bot(pyr.choice(_BOT_ANSWER.get(intent, _BOT_FALLBACK)))


_FLOWS = {_KIND_SUPPORT: _support, _KIND_LEAD: _lead, _KIND_DRIVEBY: _driveby, _KIND_BUG: _bug,
          _KIND_TEST: _test}


# --------------------------------------------------------------------------- #
# Calendar plan (vectorised)
# --------------------------------------------------------------------------- #
def _sample_starts(rng, count, weeks_idx, base, hour_w, dow_w):
    dow = rng.choice(7, size=count, p=dow_w / dow_w.sum())
    hour = rng.choice(24, size=count, p=hour_w / hour_w.sum())
    sec = rng.integers(0, 3600, size=count)
    return base + weeks_idx.astype(np.int64) * 7 * _DAY + dow * _DAY + hour * 3600 + sec


def _assign_users(rng, count):
    """User index for each of `count` conversations: ~20% of users have several."""
    n_users = max(1, round(count / 1.4))
    counts = np.where(rng.random(n_users) < 0.2, 1 + rng.geometric(0.5, n_users), 1)
    counts = np.minimum(counts, 12)
    diff = count - int(counts.sum())
    if diff > 0:
        counts = np.concatenate([counts, np.ones(diff, dtype=counts.dtype)])
    while diff < 0:
        singles = np.flatnonzero(counts == 1)
        if len(singles):
            drop = singles[-min(len(singles), -diff):]
            counts = np.delete(counts, drop)
            diff += len(drop)
        else:
            counts[np.argmax(counts)] -= 1
            diff += 1
    users = np.repeat(np.arange(len(counts)), counts)
    return rng.permutation(users), len(counts)


def generate(*, seed: int = 42, n_conversations: int = 3000, weeks: int = 13,
             start: str = "2026-08-03", free_text: float = 0.0) -> pd.DataFrame:
    """Generate the sample export: one row per message, columns :data:`COLUMNS`.

    Parameters
    ----------
    seed : int
        Seeds ``numpy.random.default_rng`` and ``random.Random``; the same
        arguments always give the same frame.
    n_conversations : int
        Exact number of conversations, test conversations included (>= 1).
    weeks : int
        Length of the period in weeks (>= 1), starting at ``start``.
    start : str
        First day (UTC), an ISO date; the default is a Monday.
    free_text : float
        Share of user messages (0-1) that also carry what people add in their
        own words: a detail (a day, a city, a device, a name, an amount), a
        remark or a typo (:func:`personalise`). The default 0 keeps the
        template texts, so most user texts repeat (about 12% are distinct at
        100k conversations); real exports repeat far less (see
        ``tests/benchmarks/benchmark_pages.py``). It draws from its own random stream, so
        every other value of the export is the same as with 0.

    Returns
    -------
    pandas.DataFrame
        The export in source-file shape: strings (``str`` dtype, NA when
        empty), ``confidence`` and ``conversion_value`` float64, ``rating``
        Int64; booleans as ``"true"``/``"false"``. Rows are grouped by
        conversation (ids in time order) and ordered in time within one.

    Examples
    --------
    >>> frame = generate(seed=1, n_conversations=50)
    >>> frame["conversation_id"].nunique()
    50
    >>> sorted(frame["speaker"].unique())[:2]
    ['agent', 'bot']
    """
    if not isinstance(n_conversations, (int, np.integer)) or n_conversations < 1:
        raise ValueError(f"n_conversations must be a positive integer, got {n_conversations!r}")
    if not isinstance(weeks, (int, np.integer)) or weeks < 1:
        raise ValueError(f"weeks must be a positive integer, got {weeks!r}")
    if isinstance(free_text, bool) or not isinstance(free_text, (int, float)) or not 0 <= free_text <= 1:
        raise ValueError(f"free_text must be a number from 0 to 1, got {free_text!r}")
    try:
        base_day = np.datetime64(str(start), "D")
    except ValueError as exc:
        raise ValueError(f"start must be an ISO date such as '2026-08-03', got {start!r}") from exc
    base = int(base_day.astype("datetime64[s]").astype(np.int64))
    end = base + weeks * 7 * _DAY
    rng = np.random.default_rng(seed)
    pyr = random.Random(seed)

    # --- how many of each kind, and when ---------------------------------- #
    n = int(n_conversations)
    n_test = round(_TEST_SHARE * n) if n >= 20 else 0
    spike_week = 8 if weeks > 8 else (weeks // 2 if weeks >= 3 else None)
    week_w = 1.0 + 0.015 * np.arange(weeks)
    n_spike = 0
    if spike_week is not None:
        share = _SPIKE_FACTOR * week_w[spike_week] / (week_w.sum() + _SPIKE_FACTOR * week_w[spike_week])
        n_spike = round(share * (n - n_test))
    n_base = n - n_test - n_spike
    n_follow = round(_FOLLOW_UP_SHARE * n_base) if n_base >= 30 else 0
    n_primary = n_base - n_follow

    week_p = week_w / week_w.sum()
    primary_week = rng.choice(weeks, size=n_primary, p=week_p)
    primary_start = _sample_starts(rng, n_primary, primary_week, base, _HOUR_WEIGHTS, _DOW_WEIGHTS)
    spike_start = _sample_starts(rng, n_spike, np.full(n_spike, spike_week or 0), base,
                                 _APP_HOUR_WEIGHTS, np.ones(7))
    test_week = rng.integers(0, weeks, size=n_test)
    test_start = _sample_starts(rng, n_test, test_week, base, np.r_[np.zeros(9), np.ones(8), np.zeros(7)],
                                np.r_[np.ones(5), np.zeros(2)])

    # users and segments (primary + spike share the user pool)
    user_of, n_users = _assign_users(rng, n_primary + n_spike)
    user_segment = rng.choice(3, size=n_users, p=_SEGMENT_P)
    user_label = rng.permutation(n_users) + 10_001
    primary_user, spike_user = user_of[:n_primary], user_of[n_primary:]

    # primary kinds: lead generation depends on the segment
    seg = user_segment[primary_user]
    r = rng.random(n_primary)
    primary_kind = np.where(r < _DRIVEBY_P, _KIND_DRIVEBY,
                            np.where(r < _DRIVEBY_P + (1 - _DRIVEBY_P) * _LEAD_P_BY_SEGMENT[seg],
                                     _KIND_LEAD, _KIND_SUPPORT))

    # support intents drift: delivery problems grow after the spike week
    later = np.clip(primary_week - 8, 0, None)
    p_matrix = np.tile(_SUPPORT_INTENT_P, (n_primary, 1))
    p_matrix[:, 1] *= 1.0 + _DELIVERY_DRIFT_PER_WEEK * later
    cdf = np.cumsum(p_matrix / p_matrix.sum(axis=1, keepdims=True), axis=1)
    primary_intent = (rng.random(n_primary)[:, None] > cdf).sum(axis=1)
    primary_intent = np.minimum(primary_intent, len(_SUPPORT_INTENTS) - 1)

    # follow-ups: the same user, same problem, 1-20 hours later
    candidates = np.flatnonzero((primary_kind == _KIND_SUPPORT) & (primary_start < end - 21 * 3600))
    n_follow = min(n_follow, len(candidates))
    parents = np.sort(rng.choice(candidates, size=n_follow, replace=False)) if n_follow else np.zeros(0, int)
    follow_start = primary_start[parents] + rng.integers(3600, 20 * 3600, size=n_follow)
    n_primary_all = n_primary + n_follow
    n = n_primary_all + n_spike + n_test  # unchanged unless candidates ran out
    if n != n_conversations:  # too few candidates: top up with primaries
        extra = n_conversations - n
        extra_week = rng.choice(weeks, size=extra, p=week_p)
        primary_start = np.concatenate([primary_start, _sample_starts(
            rng, extra, extra_week, base, _HOUR_WEIGHTS, _DOW_WEIGHTS)])
        primary_user = np.concatenate([primary_user, rng.integers(0, n_users, size=extra)])
        primary_kind = np.concatenate([primary_kind, np.full(extra, _KIND_SUPPORT)])
        primary_intent = np.concatenate([primary_intent, np.zeros(extra, dtype=primary_intent.dtype)])
        primary_week = np.concatenate([primary_week, extra_week])
        n = n_conversations

    start_all = np.concatenate([primary_start, follow_start, spike_start, test_start])
    kind_all = np.concatenate([primary_kind, np.full(n_follow, _KIND_SUPPORT),
                               np.full(n_spike, _KIND_BUG), np.full(n_test, _KIND_TEST)])
    user_all = np.concatenate([primary_user, primary_user[parents], spike_user, np.full(n_test, -1)])
    intent_all = np.concatenate([primary_intent, primary_intent[parents],
                                 np.zeros(n_spike + n_test, dtype=primary_intent.dtype)])
    parent_all = np.concatenate([np.full(len(primary_start), -1), parents, np.full(n_spike + n_test, -1)])
    test_no = np.concatenate([np.full(n - n_test, -1), rng.integers(1, 6, size=n_test)])

    # the last three ordinary conversations are still running at the export's end
    running = np.zeros(n, dtype=bool)
    if n_primary >= 30:
        last = np.argsort(primary_start, kind="stable")[-3:]
        primary_start_last = end - rng.integers(120, 1500, size=3)
        start_all[last] = primary_start_last
        kind_all[last] = _KIND_SUPPORT
        running[last] = True

    order = np.argsort(start_all, kind="stable")
    # parent index -> position in time order (a follow-up keeps its parent's channel)
    position = np.empty(n, dtype=np.int64)
    position[order] = np.arange(n)

    width = max(5, len(str(n)))
    conv_ids = [f"conv-{i:0{width}d}" for i in range(1, n + 1)]
    fields_by_conv: list[dict] = [None] * n  # type: ignore[list-item]
    channel_by_conv: list[str] = [None] * n  # type: ignore[list-item]
    users_by_conv: list[str] = [None] * n  # type: ignore[list-item]
    segments_by_conv: list[str] = [None] * n  # type: ignore[list-item]
    switch = base + min(7, max(1, weeks - 1)) * 7 * _DAY if weeks > 1 else end
    out = _Out()

    for i, src in enumerate(order.tolist()):
        kind = int(kind_all[src])
        t0 = int(start_all[src])
        v2 = t0 >= switch
        p = _Plan()
        p.kind = kind
        p.outcome = None
        p.intent = None
        p.follow_up = parent_all[src] >= 0
        p.agents_online = _agents_online(t0)
        p.stage = 0
        p.lead_escalates = False
        p.reason = None
        p.utm_source = ""
        fields: dict = {"model_version": "nlu-v2" if v2 else "nlu-v1"}
        if kind == _KIND_TEST:
            segment = None
            user = f"test-user-{int(test_no[src]):02d}"
            p.channel = pyr.choice(("web", "app"))
            p.mood = "neutral"
            fields["is_test"] = "true"
        else:
            u = int(user_all[src])
            segment = _SEGMENTS[int(user_segment[u])]
            user = f"u{int(user_label[u])}"
            _plan_conversation(p, kind, int(intent_all[src]), segment, v2, bool(running[src]), pyr, fields)
            if p.follow_up:
                p.channel = channel_by_conv[position[int(parent_all[src])]] or p.channel
        c = _Conv(out, i, t0, pyr, v2)
        _FLOWS[kind](c, p, fields)
        if kind == _KIND_LEAD and fields.get("goal_achieved") == "true":
            source = p.utm_source
            p_convert = _CONVERT_P_BY_SOURCE[source] * (1.3 if segment == "enterprise" else 1.0)
            if pyr.random() < p_convert:
                mu, sigma = _VALUE_BY_SEGMENT[segment]
                fields["converted"] = "true"
                fields["conversion_value"] = round(pyr.lognormvariate(mu, sigma), 2)
            else:
                fields["converted"] = "false"
        elif kind == _KIND_LEAD:
            fields["converted"] = "false"
        if p.outcome is not None and pyr.random() < _OUTCOME_REPORTED_SHARE:
            fields["outcome"] = p.outcome
        fields_by_conv[i] = fields
        channel_by_conv[i] = p.channel
        users_by_conv[i] = user
        segments_by_conv[i] = segment

    frame = _assemble(out, conv_ids, fields_by_conv, channel_by_conv, users_by_conv, segments_by_conv, rng)
    return personalise(frame, share=free_text, seed=seed) if free_text else frame


_DETAILS = (
    "I ordered it on {day}", "it's been {n} days now", "I already asked {n} times", "I'm in {city}",
    "my name is {name}", "it's for my {who}", "I'm on my {device}", "since {day}", "it was {amount}",
    "I need it before {day}", "I'm on the {plan} plan", "my {who} told me to ask here", "I live in {city}",
    "this is {name} by the way", "I tried on my {device} too", "I paid {amount}", "we're {n} people in the team",
    "it happened again on {day}", "{name} from support said to write here", "I'm travelling to {city} on {day}",
)
_REMARKS = ("sorry for the typos", "quick question", "hope that makes sense", "not sure this is the right place",
            "long story", "fyi", "just checking", "no rush", "asap please", "thx", "btw", "one more thing")
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday", "last week", "yesterday",
         "the weekend", "the 3rd", "the 12th", "the 21st", "the 28th", "March 4", "June 17", "Oct 9", "Christmas")
_CITIES = ("Leeds", "Lyon", "Austin", "Porto", "Graz", "Dublin", "Cork", "Denver", "Malmo", "Turin", "Bristol",
           "Ghent", "Bergen", "Tampa", "Leipzig", "Seville", "Toronto", "Perth", "Oslo", "Nantes", "Krakow", "Utrecht",
           "Boise", "Reno", "Bilbao", "Aarhus", "Brno", "Cardiff", "Galway", "Basel")
_NAMES = ("Sam", "Priya", "Jonas", "Mia", "Ahmed", "Lena", "Tom", "Chloe", "Diego", "Anna", "Kofi", "Yuki", "Ben",
          "Sara", "Luca", "Ines", "Omar", "Eva", "Noah", "Zoe", "Ravi", "Lea", "Max", "Nora", "Ivan", "Aisha", "Leo",
          "Emma", "Hugo", "Maya", "Finn", "Rosa", "Eli", "Tara", "Milo", "Lina", "Adam", "Ella", "Jack", "Ada")
_WHO = ("wife", "husband", "son", "daughter", "mum", "dad", "boss", "team", "sister", "brother", "flatmate", "client")
_DEVICES = ("iPhone", "Android", "laptop", "iPad", "work PC", "Mac", "tablet", "phone")
_PLANS = ("basic", "plus", "pro", "family", "business", "starter")


def _detail(pyr: random.Random) -> str:
    return pyr.choice(_DETAILS).format(
        day=pyr.choice(_DAYS), n=pyr.randint(2, 30), city=pyr.choice(_CITIES), name=pyr.choice(_NAMES),
        who=pyr.choice(_WHO), device=pyr.choice(_DEVICES), plan=pyr.choice(_PLANS),
        amount=f"${pyr.randint(5, 400)}.{pyr.randint(0, 99):02d}")


def _typo(text: str, pyr: random.Random) -> str:
    """Swap two inner letters of one word of 4+ letters (the text is unchanged when it has none)."""
    words = text.split(" ")
    long = [i for i, w in enumerate(words) if len(w) >= 4 and w.isalpha()]
    if not long:
        return text
    i = pyr.choice(long)
    w = words[i]
    j = pyr.randint(1, len(w) - 3)
    words[i] = w[:j] + w[j + 1] + w[j] + w[j + 2:]
    return " ".join(words)


def _own_words(text: str, pyr: random.Random) -> str:
    r = pyr.random()
    if r < 0.6:
        glue = " " if text.rstrip()[-1:] in ".!?" else pyr.choice((", ", " - ", ". ", " "))
        joined = f"{text.rstrip()}{glue}{_detail(pyr)}"
    elif r < 0.8:
        joined = f"{pyr.choice(_REMARKS)}{pyr.choice((', ', ': ', ' - '))}{text}"
    else:
        joined = f"{text} ({_detail(pyr)})"
    return _typo(joined, pyr) if pyr.random() < 0.3 else joined


def personalise(frame: pd.DataFrame, *, share: float, seed: int) -> pd.DataFrame:
    """A copy of ``frame`` where about ``share`` of the user messages carry words of the user's own.

    A chosen message gets a detail (a day, a city, a device, a name, an amount:
    ``"where is my order, I'm in Leeds"``), a remark (``"quick question: ..."``)
    or both plus a swapped-letter typo; the template words stay, so what the
    message says (its intent, its funnel step) does not change. Uses its own
    ``random.Random`` stream seeded from ``seed``. ``frame`` is not modified.

    Examples
    --------
    >>> f = pd.DataFrame({"speaker": ["user", "bot"], "text": ["where is my order", "Let me check."]})
    >>> out = personalise(f, share=1.0, seed=1)
    >>> out["text"][0] != "where is my order", out["text"][1]
    (True, 'Let me check.')
    """
    pyr = random.Random(f"chatlens-free-text-{seed}")
    texts = frame["text"].to_numpy(dtype=object, na_value=None).copy()
    for i in np.flatnonzero(frame["speaker"].eq("user").fillna(False).to_numpy(dtype=bool)):
        if texts[i] is not None and pyr.random() < share:
            texts[i] = _own_words(texts[i], pyr)
    return frame.assign(text=pd.array(texts, dtype=frame["text"].dtype))


def _agents_online(t: int) -> bool:
    """Agents work Mon-Fri 08:00-20:00 UTC (1970-01-01 was a Thursday)."""
    day = (t // _DAY + 3) % 7  # 0 = Monday
    hour = (t % _DAY) // 3600
    return day < 5 and 8 <= hour < 20


def _plan_conversation(p: _Plan, kind: int, intent_code: int, segment: str, v2: bool, running: bool,
                       pyr: random.Random, fields: dict) -> None:
    """Channel, intent, mood, outcome and reason of one non-test conversation."""
    p.outcome = None
    p.intent = None
    p.mood = "neutral"
    if kind == _KIND_BUG:
        p.channel = "app"
        p.outcome = "abandoned"
        return
    if kind == _KIND_DRIVEBY:
        p.channel = pyr.choices(_CHANNELS, _SUPPORT_CHANNEL_W)[0]
        p.outcome = "abandoned"
        fields["topic"] = "inquiry"
        return
    if kind == _KIND_LEAD:
        source = pyr.choices(_UTM_SOURCES, _UTM_SOURCE_W)[0]
        p.utm_source = source
        if source:
            fields["utm_source"] = source
            fields["utm_campaign"] = pyr.choice(_UTM_CAMPAIGNS[source])
        if source == "facebook":
            p.channel = "messenger" if pyr.random() < 0.7 else "web"
        else:
            p.channel = "web" if pyr.random() < 0.85 else "whatsapp"
        p.intent = "pricing" if pyr.random() < 0.55 else "book_demo"
        p.mood = pyr.choices(("neutral", "happy", "frustrated"), (0.65, 0.3, 0.05))[0]
        fields["topic"] = "inquiry"
        # funnel: 100% inquiry, 60% qualification, 35% email, 25% phone (of all lead conversations)
        p.lead_escalates = pyr.random() < 0.07
        r = pyr.random()
        q = 0.60 / 0.93  # escalated leads stop at the inquiry stage
        p.stage = 3 if r < q * 25 / 60 else 2 if r < q * 35 / 60 else 1 if r < q else 0
        if p.lead_escalates:
            p.stage = 0
            p.outcome = "escalated"
        elif p.stage >= 2:
            p.outcome = "resolved"
        elif p.stage == 1:
            p.outcome = "unresolved" if pyr.random() < 0.25 else "abandoned"
        else:
            p.outcome = "resolved" if pyr.random() < 0.35 else "abandoned"
        return
    # support
    p.intent = _SUPPORT_INTENTS[intent_code]
    topic = _TOPIC[p.intent]
    fields["topic"] = topic
    p.channel = pyr.choices(_CHANNELS, _SUPPORT_CHANNEL_W)[0]
    if pyr.random() < 0.1:
        fields["utm_source"] = "email"
        fields["utm_campaign"] = "help_center"
    key = "oos" if p.intent == FALLBACK_INTENT else topic
    probs = _OUTCOME_P_BY_TOPIC[key]
    if v2:
        probs = tuple(max(0.0, a + b) for a, b in zip(probs, _V2_SHIFT))
    p.outcome = pyr.choices(_OUTCOMES, probs)[0]
    if running:
        p.outcome = "in_progress"
    if p.outcome == "escalated":
        reason = pyr.choices(ESCALATION_REASONS, _REASON_P_BY_TOPIC[key])[0]
        if reason == _SENSITIVE and p.intent not in _SENSITIVE_INTENTS:
            reason = _REQUESTED
        p.reason = reason
    if topic == "complaint":
        moods = (0.34, 0.42, 0.14, 0.10)
    else:
        moods = (0.60, 0.14, 0.06, 0.20)
    p.mood = pyr.choices(("neutral", "frustrated", "sarcastic", "happy"), moods)[0]
    if p.reason == _NEGATIVE:
        p.mood = "frustrated" if pyr.random() < 0.8 else "sarcastic"
    elif p.outcome == "resolved" and p.mood == "sarcastic" and pyr.random() < 0.5:
        p.mood = "frustrated"


# --------------------------------------------------------------------------- #
# Assembly (vectorised)
# --------------------------------------------------------------------------- #
def _assemble(out: _Out, conv_ids, fields_by_conv, channel_by_conv, users_by_conv, segments_by_conv,
              rng) -> pd.DataFrame:
    conv = np.asarray(out.conv, dtype=np.int64)
    n_rows = len(conv)
    ts = np.datetime_as_string(np.asarray(out.t, dtype="datetime64[s]"), unit="s")
    speaker = np.asarray(out.speaker, dtype=object)
    true_intent = np.asarray(out.true_intent, dtype=object)

    def per_conv(key):
        return np.asarray([f.get(key) for f in fields_by_conv], dtype=object)[conv]

    is_test = per_conv("is_test")
    labelled = (rng.random(n_rows) < _LABELLED_SHARE) & (speaker == "user") & (is_test != "true")
    is_test = np.where(is_test == "true", "true", "false").astype(object)
    ids = np.asarray(conv_ids, dtype=object)[conv]
    seq = np.arange(1, n_rows + 1)
    columns = {
        "conversation_id": ids,
        "message_id": np.asarray([f"msg-{k:07d}" for k in seq.tolist()], dtype=object),
        "timestamp": np.char.add(ts, "Z").astype(object),
        "speaker": speaker,
        "text": np.asarray(out.text, dtype=object),
        "user_id": np.asarray(users_by_conv, dtype=object)[conv],
        "channel": np.asarray(channel_by_conv, dtype=object)[conv],
        "intent": np.asarray(out.intent, dtype=object),
        "confidence": np.asarray([np.nan if x is None else x for x in out.confidence], dtype=np.float64),
        "true_intent": np.where(labelled, true_intent, None),
        "event": np.asarray(out.event, dtype=object),
        "model_version": np.where((speaker == "user") | (speaker == "bot"), per_conv("model_version"), None),
        "is_test": is_test,
    }
    for key in ("outcome", "goal_achieved", "escalation_reason"):
        columns[key] = per_conv(key)
    rating = per_conv("rating")
    columns["rating"] = pd.array([None if x is None else int(x) for x in rating], dtype="Int64")
    for key in ("thumbs", "survey_solved", "topic", "converted"):
        columns[key] = per_conv(key)
    value = per_conv("conversion_value")
    columns["conversion_value"] = np.asarray([np.nan if x is None else x for x in value], dtype=np.float64)
    columns["segment"] = np.asarray(segments_by_conv, dtype=object)[conv]
    for key in ("utm_source", "utm_campaign"):
        columns[key] = per_conv(key)
    frame = pd.DataFrame(columns, columns=list(COLUMNS))
    for name in COLUMNS:
        if frame[name].dtype == object:
            frame[name] = frame[name].astype("str")
    return frame


# --------------------------------------------------------------------------- #
# Writing
# --------------------------------------------------------------------------- #
def write_csv(frame: pd.DataFrame, path, *, compresslevel: int = 9) -> Path:
    """Write ``frame`` as CSV (gzip when ``path`` ends in ``.gz``), byte-reproducibly.

    The gzip header carries no file name and ``mtime=0``, so the same frame
    always gives the same bytes. Returns the path written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as raw:
        if path.suffix == ".gz":
            with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=compresslevel) as gz, \
                    io.TextIOWrapper(gz, encoding="utf-8", newline="") as text:
                frame.to_csv(text, index=False, lineterminator="\n")
        else:
            with io.TextIOWrapper(raw, encoding="utf-8", newline="") as text:
                frame.to_csv(text, index=False, lineterminator="\n")
    return path


def main(argv: list[str] | None = None) -> int:
    """``python -m data.generate [--seed 42] [--conversations 3000] [--weeks 13] [--out PATH]``."""
    parser = argparse.ArgumentParser(prog="python -m data.generate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--conversations", type=int, default=3000)
    parser.add_argument("--weeks", type=int, default=13)
    parser.add_argument("--start", default="2026-08-03")
    parser.add_argument("--out", default=str(DEFAULT_PATH))
    args = parser.parse_args(argv)
    try:
        frame = generate(seed=args.seed, n_conversations=args.conversations, weeks=args.weeks, start=args.start)
    except ValueError as exc:
        parser.error(str(exc))
    path = write_csv(frame, args.out)
    print(f"wrote {len(frame):,} messages in {frame['conversation_id'].nunique():,} conversations to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
