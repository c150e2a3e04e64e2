"""Escalation rules: answer, ask to clarify, or hand the conversation to a person.

``decide`` is a pure function of ``EscalationInputs``. The first rule that matches wins, in this
order (``REASONS``): self_harm > account_takeover > sensitive_fraud > sensitive_legal >
explicit_request > model_requested > negative_sentiment > repeated_failure > low_confidence.
Safety first, then security and money, then what the customer asked for, then the model, then
the signals we infer (mood, failed turns, weak retrieval).

Topics and hand-off phrases are read from the latest customer message only (earlier ones were
decided on their own turn); earlier messages feed the sentiment trend when none is passed, spot
count how often the same question was asked, and tell a vague question from a short follow-up.
Sensitive topics match even when negated ("I don't want to sue, but…" goes to a person);
hand-off requests do not ("no need for a human").
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from rapidfuzz.distance import OSA

from app.domain import Decision, Priority, Reason
from app.responder.handoff import negated_request
from app.responder.sentiment import TrendInfo, trend_of_texts
from app.responder.variants import EscalationSettings

REASONS: tuple[Reason, ...] = tuple(r for r in Reason if r != Reason.MANUAL)  # priority order
PRIORITY: dict[str, Priority] = {
    Reason.SELF_HARM: Priority.URGENT, Reason.ACCOUNT_TAKEOVER: Priority.URGENT,
    Reason.SENSITIVE_FRAUD: Priority.HIGH, Reason.SENSITIVE_LEGAL: Priority.HIGH,
    Reason.EXPLICIT_REQUEST: Priority.NORMAL, Reason.MODEL_REQUESTED: Priority.NORMAL,
    Reason.NEGATIVE_SENTIMENT: Priority.HIGH, Reason.REPEATED_FAILURE: Priority.NORMAL,
    Reason.LOW_CONFIDENCE: Priority.LOW,
}
AGENT_HOURS = (8, 22)  # human agents work 8 am to 10 pm Eastern, every day
AGENT_TZ = ZoneInfo("America/New_York")
AGENT_HOURS_TEXT = "8 am\N{EN DASH}10 pm ET"  # as the help center writes it


@dataclass(frozen=True)
class EscalationInputs:
    """Everything the rules look at for one customer turn.

    Args:
        message: the latest customer message.
        retrieval_confidence: calibrated 0..1 confidence of the best passage (NaN counts as 0).
        prior_messages: the customer's earlier messages, oldest first.
        sentiment: the trend over the customer's messages; computed from the messages if None.
        needs_human: the answer model asked for a person.
        needs_human_reason: the model's reason code, kept as ``detail``.
        failed_turns: consecutive assistant turns that left the customer's problem unresolved.
        clarified_before: the customer was already asked to clarify in this conversation.
        thresholds: the variant's escalation settings.
        agents_online: whether agents are working now (``agents_online_at``); None if unknown.
        asks_for_person: the hand-off intent classifier's probability when it is at or above
            its threshold (``app.responder.handoff``), else None.
        intent_decides: a classifier judged the message (the phrase rules are among its
            features), so only the strongest phrase rules (a message that is only "agent",
            "customer service", "human please") still decide on their own.
    """

    message: str
    retrieval_confidence: float
    prior_messages: Sequence[str] = ()
    sentiment: TrendInfo | None = None
    needs_human: bool = False
    needs_human_reason: str | None = None
    failed_turns: int = 0
    clarified_before: bool = False
    thresholds: EscalationSettings = field(default_factory=EscalationSettings)
    agents_online: bool | None = None
    asks_for_person: float | None = None
    intent_decides: bool = False

    def __post_init__(self) -> None:
        conf = self.retrieval_confidence
        if not math.isnan(conf) and not 0.0 <= conf <= 1.0:
            raise ValueError(f"retrieval_confidence is {conf}; pass a calibrated value in [0, 1]")
        if self.failed_turns < 0:
            raise ValueError(f"failed_turns is {self.failed_turns}; pass a count ≥ 0")


@dataclass(frozen=True)
class EscalationDecision:
    """What to do with the turn.

    Args:
        escalate: hand the conversation to a person.
        clarify: ask the customer a clarifying question instead of answering.
        reason: the rule that fired (None when answering normally).
        priority: queue priority for the hand-off (``low`` when not escalating).
        next_steps: customer-facing text saying what happens next ("" when answering).
        detail: evidence for logs: the matched phrase or the model's reason.

    Example:
        >>> decide(EscalationInputs("agent please", retrieval_confidence=0.9)).reason
        'explicit_request'
    """

    escalate: bool
    clarify: bool
    reason: Reason | None
    priority: Priority
    next_steps: str
    detail: str = ""

    @property
    def decision(self) -> Decision:
        """``answer``, ``clarify`` or ``escalate``."""
        return (Decision.ESCALATE if self.escalate else Decision.CLARIFY if self.clarify
                else Decision.ANSWER)


# --- Sensitive topics (matched on the accent-folded, lower-cased message) -------------------

_SELF_HARM = re.compile(
    r"\b(kill(ing)? myself|hurt(ing)? myself|harm(ing)? myself|self[- ]?harm\w*|cut(ting)? myself"
    r"|end(ing)? (it all|my (own )?life)|take my (own )?life|suicid\w*|(want|wanna|going) to die"
    r"|wish i (was|were) dead|better off dead|(don'?t|do not) want to (live|be alive|exist)"
    r"|(don'?t|do not) want to be here any ?more|no (reason|point) (to|in) (live|living|going on)"
    r"|(don'?t|do not|can'?t) see the point (of|in) (anything|living|life|going on|it all)"
    r"|(me )?quiero morir|suicidarme|matarme|quitarme la vida|no quiero vivir)\b")
_TAKEOVER = re.compile(
    r"\b(hack(ed|er|ers|ing)|(account|acct) (was |has been |got |been )?(compromised|taken over"
    r"|breached|stolen|hijacked)|(someone|somebody|a stranger|they) (else )?(has |have )?"
    r"(changed|reset|updated) (my|the) (e-?mail|password|phone( number)?|2fa|two[- ]factor|login)"
    r"|(someone|somebody|a stranger) (else )?(is |was |has )?(logged|logging|signed|signing|got"
    r"|gotten|getting|broke|been) in(to| to)? my account|(log ?ins?|sign[- ]?ins?|logged in"
    r"|signed in)( attempts?| alerts?| notifications?)? from (another|a different|an unknown"
    r"|a foreign|some other|other) (country|location|city|state|device|place)"
    r"|(i )?(didn'?t|did not|never) (changed?|reset|requested|request|updated?) (my |the |a )?"
    r"(password|e-?mail|phone number|2fa)|wasn'?t me who (changed|logged)|me hackearon"
    r"|hackearon mi cuenta|cuenta hackeada)\b")
_FRAUD = re.compile(
    r"\b(unauthori[sz]ed (charges?|transactions?|purchases?|payments?|orders?|use)|fraud(ulent)?"
    r"|(charges?|transactions?|purchases?|payments?|orders?)\b[^.?!]{0,40}\b(i|we) (didn'?t|did not"
    r"|never) (make|made|place|placed|authori[sz]ed?|order(ed)?|buy|bought|recogni[sz]e)"
    r"|(don'?t|do not) recogni[sz]e (this|that|these|the|a|an|any)? ?(charges?|transactions?"
    r"|purchases?|payments?|orders?)|(stolen|lost) (credit |debit )?card|(card|wallet|purse) (was "
    r"|has been |got )?stolen|someone (used|is using|has used|charged) my (credit |debit |gift )?"
    r"(card|paypal|account)|identity theft|cargos? (no autorizados?|que no hice)|fraude)\b")
_LEGAL = re.compile(
    r"\b(lawyers?|attorneys?|solicitors?|legal (action|proceedings?|steps)|law ?suits?"
    r"|class action|small claims|(sue|suing|sued)\b(?! (from|at|in|on|is|was|said)\b)"
    r"|take (you|this|lumen|it|them) to court|see you in court|court case|charge-?backs?"
    r"|dispute (the|this|that|these|my|a) (charges?|transactions?|payments?) with (my|the) (bank"
    r"|card|credit card company|card issuer)|better business bureau|bbb|attorney general|ftc"
    r"|consumer (protection|rights|affairs)|trading standards|report (you|lumen|this|your company)"
    r" to|(violation|breach) of (the )?law|breaking the law|abogad[oa]s?|demandar\w*"
    r"|accion legal)\b")

_TOPICS: tuple[tuple[Reason, re.Pattern[str]], ...] = (
    (Reason.SELF_HARM, _SELF_HARM), (Reason.ACCOUNT_TAKEOVER, _TAKEOVER),
    (Reason.SENSITIVE_FRAUD, _FRAUD), (Reason.SENSITIVE_LEGAL, _LEGAL))

# --- Requests for a person ------------------------------------------------------------------

_NOUN = (r"(human( being)?s?|person|agent|operator|supervisor|manager|employee|staff( member)?"
         r"|(customer )?(service|support|care) (rep|reps|representative|agent|person|team)"
         r"|customer (service|support|care)|reps?|representative"
         r"|member of (your |the )?(staff|team)|someone|somebody|anyone|anybody)")
_STRICT_NOUN = (r"(human( being)?s?|person|agent|operator|supervisor|manager|employee"
                r"|(customer (service|support|care) )?(rep|representative|agent)"
                r"|customer (service|support|care))")
_DET = r"((a|an|the|one|some|any|your|ur) )?"
_ADJ = r"((real|live|actual|human|proper|living|flesh and blood) )?"
_HUMAN_REQUEST = [re.compile(p) for p in (
    # talk / speak / transfer … to a person
    r"\b(talk|speak|chat|converse|be (connected|transferred|put through)|connect me|transfer me"
    r"|put me (through|thru)|pass me|hand me( over)?|switch me|escalate( this| me| it)?)"
    rf"( \w+){{0,2}}? (to|with|through to|over to) {_DET}{_ADJ}{_NOUN}\b(?!'s)",
    rf"\b(is there|are there|do you have|do you guys have) (a|an|any|some) {_ADJ}{_STRICT_NOUN}"
    r"( (i|we) can (talk|speak|chat) (to|with))?(?=\s*([?.!,]|$))",
    r"^((hi|hello|hey),? )?(customer (service|support|care)|live (chat|support))"
    r"( (please|pls|plz|now))*[\s!.?]*$",
    # want / need / get me … a person (not "need a person to sign")
    r"\b(want|need|get me|give me|(can|could|may) i (get|have)|i'?d like|id like|prefer|request"
    rf"|requesting|demand|ask(ing)? for) {_DET}{_ADJ}{_STRICT_NOUN}\b(?!'s)"
    r"(?! to (sign|be (home|there|present)|pick))",
    r"(?<!my )(?<!delivery )\b(human|person|agent|representative|rep|operator|supervisor|manager"
    r")( please| pls| plz)\b",
    # "someone please" alone is a plea for a person; "can someone please tell me…" is not
    r"^\W*(someone|somebody)( please| pls| plz)[\s!.?]*$",
    # is this a bot?
    r"\b(is this|is that|is this just|am i (talking|chatting|speaking|texting) (to|with)"
    r"|are (you|u)|r u) ((a|an|just a|just an|only a) )?(bot|robot|machine|ai|chatbot|automated"
    r"|real person|real human|human|person|actual person|computer)"
    r"(?=\s*([?.!,]|$|or\b|and\b|right now|here))",
    r"^are (you|u) real\W*$",
    # call me
    r"\b(call|phone|ring) me( back)?\b(?!\s+(by|as|\w+ (by|as))\b)",
    r"\bgive me a (call|ring)\b",
    r"\bcan i (call|phone) (you|someone|somebody|an agent|a person|a human)\b",
    r"\bescalate (this|it|my (case|issue|ticket|complaint))\b",
    # Spanish and French (accents folded)
    r"\b(hablar|habla|hable|comunicarme|contactar|chatear|pasame|paseme|transfiereme|transfierame)"
    r"( \w+){0,2}? (con|a) ((un|una|el|la) )?(agente|persona|humano|representante|operador[a]?"
    r"|supervisor[a]?|gerente|encargad[oa]|alguien|asesor[a]?|ejecutiv[oa])\b",
    r"\b(quiero|necesito|quisiera|deseo|dame) ((a|con) )?(un|una) (agente|persona|humano"
    r"|representante|operador[a]?|asesor[a]?)\b",
    r"\b(agente|persona|humano|representante|operador[a]?|asesor[a]?) (por favor|porfa)\b",
    r"\b(es (esto )?un|eres( un)?|estoy hablando con (un|una)) (bot|robot|humano|persona real"
    r"|maquina)\b",
    r"\b(llamame|llamenme|me (pueden|puede|podrian) llamar)\b",
    r"\bparler (a|avec) (un |une )?(conseiller|conseillere|agent|humain|personne|operateur"
    r"|quelqu'un)\b",
)]


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# A message that is only a noun plus politeness: "agent", "human please", "REPRESENTATIVE!!!".
_SHORT_NOUNS = _words("human humans person agent agents representative rep operator supervisor "
                      "manager someone somebody employee agente representante humano persona "
                      "operador asesor")
_SHORT_FILLER = _words("hi hello hey ok okay just please pls plz now asap a an the real live "
                       "actual human me thanks por favor un una ya customer service support")
_NEGATORS = _words("not never don't dont doesn't doesnt didn't didnt won't wont wouldn't "
                   "without nor")
_THIRD_PARTY = _words("will would did does they ups usps fedex courier driver carrier he she it")
# Typos of these nouns ("humna", "reprsentative") are corrected before matching, but real words
# one edit away from them are left alone.
_FUZZY_TARGETS = ("human", "person", "agent", "representative", "operator", "supervisor",
                  "manager", "someone", "somebody", "employee", "technician", "specialist",
                  "department", "engineer", "advisor", "colleague", "connect", "speak",
                  "customer", "service", "transfer", "available")
_REAL_WORDS = _words("humane humans manage managed manages parson persona personal persons "
                     "agents agenda operate operators managers supervisors employees employer "
                     "someones humano agente connects connected speaks specialists engineers "
                     "engines departments advisors colleagues services servicer transfers "
                     "spent spend spear speck customs")
_CURLY_QUOTES = {0x2018: "'", 0x2019: "'"}


def normalize(text: str) -> str:
    """Lower-case, fold accents and curly quotes, collapse whitespace."""
    folded = unicodedata.normalize("NFKD", text.translate(_CURLY_QUOTES))
    folded = "".join(c for c in folded if not unicodedata.combining(c))
    return re.sub(r"\s+", " ", folded.lower()).strip()


def _correct_typos(text: str) -> str:
    def fix(m: re.Match[str]) -> str:
        word = m.group(0)
        if len(word) < 4 or word in _REAL_WORDS or word in _FUZZY_TARGETS:
            return word
        for target in _FUZZY_TARGETS:
            limit = 2 if len(target) >= 10 else 1
            if word[0] == target[0] and OSA.distance(word, target, score_cutoff=limit) <= limit:
                return target
        return word
    return re.sub(r"[a-z]+", fix, text)


def fuzzy_normalize(message: str) -> str:
    """``normalize``, then typos of the words a request for a person is made of corrected
    ("agnet" → "agent", "speek" → "speak"); real words one edit away are left alone."""
    return _correct_typos(normalize(message))


def _clause_before(text: str, start: int) -> list[str]:
    """Words of the clause before ``start`` (back to the last punctuation mark)."""
    clause = re.split(r"[.,;:!?]", text[:start])[-1]
    return clause.split()[-4:]


# Rules so precise that a classifier is not asked to overrule them: a message that is only a
# person ("agent", "human please", "customer service"), "<person> please", "someone please".
_STRONG = frozenset({_HUMAN_REQUEST[2], _HUMAN_REQUEST[4], _HUMAN_REQUEST[5]})


def find_human_request(message: str, strong_only: bool = False) -> str | None:
    """The phrase asking for a person (English, Spanish or French; typos allowed), or None;
    ``strong_only``: only the rules a classifier may not overrule."""
    text = fuzzy_normalize(message)
    words = re.findall(r"[a-z']+", text)
    if words and len(words) <= 6 and any(w in _SHORT_NOUNS for w in words) and all(
        w in _SHORT_NOUNS or w in _SHORT_FILLER for w in words
    ):
        return text
    for pattern in _HUMAN_REQUEST:
        if strong_only and pattern not in _STRONG:
            continue
        for m in pattern.finditer(text):
            before = _clause_before(text, m.start())
            negated = _NEGATORS.intersection(before) or "no need" in " ".join(before)
            if negated and "why" not in before:
                continue
            if m.group(0).startswith(("call", "phone", "ring")) and _THIRD_PARTY & set(before):
                continue
            return m.group(0)
    return None


def find_sensitive_topic(message: str) -> tuple[Reason, str] | None:
    """The highest-priority sensitive topic in the message and the phrase that matched."""
    text = normalize(message)
    return next(((r, m.group(0)) for r, p in _TOPICS if (m := p.search(text))), None)


_STOPWORDS = _words(
    "a an the i me my we our you your it its it's this that these those is are was were be been "
    "am do does did doing have has had can could would should will shall may might must to of in "
    "on at for from with by about as and or but if so just what whats what's where wheres when "
    "why how who which there here hi hello hey thanks thank please pls ok okay yes no not any "
    "some get got im i'm i've ive dont don't can't cant isn't isnt")
_GENERIC = _words(
    "help issue issues problem problems question questions working work works worked broken wrong "
    "something stuff thing things happened happening anything nothing sure still again now "
    "need want know tell info information")


def _content_words(text: str) -> list[str]:
    return [w for w in re.findall(r"[a-z0-9']+", normalize(text)) if w not in _STOPWORDS]


def is_vague(message: str, prior_messages: Sequence[str] = ()) -> bool:
    """A very short or generic question ("it's broken", "where is it") with no earlier context.

    Vague means no specific word at all, or at most three words with at most one specific
    word. A short message after a specific earlier one is a follow-up, not vague.
    """
    specific = [w for w in _content_words(message) if w not in _GENERIC]
    total = len(re.findall(r"[a-z0-9']+", normalize(message)))
    if specific and (total > 3 or len(specific) > 1):
        return False
    return all(len(set(_content_words(p)) - _GENERIC) < 3 for p in prior_messages)


def repeat_count(message: str, prior_messages: Sequence[str]) -> int:
    """How many earlier messages say (nearly) the same: ≥ 80% word overlap, 3+ words.

    ``decide`` uses it as a floor for ``failed_turns``, so a turn already counted isn't doubled.
    """
    words = set(_content_words(message))
    if len(words) < 3:
        return 0
    return sum(
        len(words & set(_content_words(p))) / len(words | set(_content_words(p))) >= 0.8
        for p in prior_messages
    )


def agents_online_at(now: datetime) -> bool:
    """Whether human agents are working at ``now`` (8 am to 10 pm Eastern, every day)."""
    if now.tzinfo is None:
        raise ValueError("pass a timezone-aware datetime, e.g. datetime.now(timezone.utc)")
    return AGENT_HOURS[0] <= now.astimezone(AGENT_TZ).hour < AGENT_HOURS[1]


def _when(agents_online: bool | None) -> str:
    if agents_online is True:
        return "An agent will pick up this conversation here shortly."
    if agents_online is False:
        return (f"Our agents are offline right now (they're online {AGENT_HOURS_TEXT} every day). "
                "A person will pick up this conversation when the team is back, and we'll "
                "email you when they reply.")
    return (f"A person will reply here as soon as they can. Agents are online {AGENT_HOURS_TEXT} "
            "every day, and we'll email you when they reply.")


_OPENERS: dict[Reason, str] = {
    Reason.SELF_HARM:
    "I'm really sorry you're feeling this way, and I'm glad you told me. You don't "
    "have to go through this alone: in the US or Canada you can call or text 988, any time, to "
    "reach a trained crisis counselor; in the UK and Ireland, Samaritans are on 116 123; "
    "elsewhere, findahelpline.com lists free local lines. If you're in immediate danger, please "
    "call your local emergency number (911 in the US) now. I've also asked a person from our "
    "team to look at this conversation.",
    Reason.ACCOUNT_TAKEOVER:
    "I'm sorry, let's lock your account down right away. 1) Reset your "
    "password with \"Forgot password?\" on the sign-in page, picking one you don't use anywhere "
    "else. 2) Go to Account → Security and select \"Sign out of all devices\". I've flagged this "
    "to our security team as urgent: they'll review any orders placed and reverse changes you "
    "didn't make, and email you the outcome, usually within 1\N{EN DASH}2 business days.",
    Reason.SENSITIVE_FRAUD:
    "I've flagged this to our team as a priority so a person can review these "
    "charges with you. If you think your card details were stolen, please also contact your "
    "card issuer to block the card. Don't share your full card number here; we'll never ask "
    "for it.",
    Reason.SENSITIVE_LEGAL:
    "I understand. I've passed this conversation to our team as a priority, "
    "and a person will review everything you've told me.",
    Reason.EXPLICIT_REQUEST: "Of course. I'm passing this conversation to a person.",
    Reason.MODEL_REQUESTED:
    "This one needs a person, so I've passed your conversation to our team.",
    Reason.NEGATIVE_SENTIMENT: "I'm sorry this has been so frustrating. I've passed your "
    "conversation to a person who can take it from here.",
    Reason.REPEATED_FAILURE: "I'm sorry I haven't been able to sort this out. I've passed your "
    "conversation to a person, who will see everything you've told me, so you won't need to "
    "repeat it.",
    Reason.LOW_CONFIDENCE: "I don't want to guess on this one, so I've passed your question to a "
    "person.",
}
CLARIFY_MESSAGE = (
    "I want to make sure I point you to the right answer. Could you tell me a bit more, for "
    "example which order or product this is about and what happened?")


def next_steps_for(reason: Reason, agents_online: bool | None = None) -> str:
    """Customer-facing text for a hand-off: what we did and what happens next."""
    if reason == Reason.SELF_HARM:
        return _OPENERS[reason]  # crisis resources only; no queue times in this message
    return f"{_OPENERS[reason]} {_when(agents_online)}"


def decide(inputs: EscalationInputs) -> EscalationDecision:
    """Apply the rules in ``REASONS`` order; the first that matches decides the turn."""
    def escalate(reason: Reason, detail: str = "") -> EscalationDecision:
        return EscalationDecision(True, False, reason, PRIORITY[reason],
                                  next_steps_for(reason, inputs.agents_online), detail)

    topic = find_sensitive_topic(inputs.message)
    if topic:
        return escalate(*topic)
    phrase = find_human_request(inputs.message, strong_only=inputs.intent_decides)
    if phrase:
        return escalate(Reason.EXPLICIT_REQUEST, phrase)
    if inputs.asks_for_person is not None and not negated_request(inputs.message):
        said = find_human_request(inputs.message)
        return escalate(Reason.EXPLICIT_REQUEST, f"intent p={inputs.asks_for_person:.2f}"
                        + (f": {said}" if said else ""))
    if inputs.needs_human:
        return escalate(Reason.MODEL_REQUESTED, inputs.needs_human_reason or "")
    mood = inputs.sentiment or trend_of_texts([*inputs.prior_messages, inputs.message])
    if mood.frustrated:
        return escalate(Reason.NEGATIVE_SENTIMENT, ",".join(mood.reasons))
    failed = max(inputs.failed_turns, repeat_count(inputs.message, inputs.prior_messages))
    limits = inputs.thresholds
    if failed >= limits.max_failed_turns:
        return escalate(Reason.REPEATED_FAILURE, f"{failed} failed turns")
    confidence = 0.0 if math.isnan(inputs.retrieval_confidence) else inputs.retrieval_confidence
    clarify = EscalationDecision(False, True, Reason.LOW_CONFIDENCE, Priority.LOW, CLARIFY_MESSAGE,
                                 f"confidence {confidence:.2f}")
    if confidence < limits.confidence_threshold:
        if inputs.clarified_before:
            return escalate(Reason.LOW_CONFIDENCE, f"confidence {confidence:.2f} after clarifying")
        return clarify
    if (confidence < limits.clarify_threshold and not inputs.clarified_before
            and is_vague(inputs.message, inputs.prior_messages)):
        return clarify
    return EscalationDecision(False, False, None, Priority.LOW, "")
