"""Lexical cues of a request for a person, the hand-off classifier's features beside the
sentence embedding.

The embedding of a whole message blurs a short request at the end of a long story ("…can I get
someone to look at the bill directly"), and it cannot tell "the agent I spoke to fixed it" from
"get me an agent" by much. These cues are domain-free and cheap (a few regular expressions over
the normalised, typo-corrected text): who is asked for (a person, a team or role, a named
colleague), how (a request verb, a modal or "please"), complaints about the bot, and what argues
against a request (thanks, past contact, a negation, "are you a bot? fine, …", a product feature
such as call forwarding). The phrase rules of ``escalation`` are one cue among them, so the
classifier can overrule a rule that a mention of people set off.
"""

from __future__ import annotations

import re

import numpy as np

_CUES: dict[str, str] = {
    "person": r"\b(human|humans|hooman|person|people|agent|agents|rep|reps|representative"
              r"|operator|staff|employee|someone|somebody|anyone|anybody|real one|irl"
              r"|actual (person|human|employee)|live (agent|person|chat|support))\b",
    "role": r"\b(team|department|dept|desk|specialist|engineer|engineers|technician|tech"
            r"|advisor|adviser|banker|colleague|manager|supervisor|customer (service|support"
            r"|care)|support staff)\b",
    "request_verb": r"\b(talk|speak|chat|connect|transfer|put me (through|thru)|get me|give me"
                    r"|loop in|pass (this|me|it)|reach|hand (me|this)|escalate|book a call"
                    r"|hop on|video call|call me|ring me|callback|call back|get back to me"
                    r"|look at|review|check)\b",
    "ask": r"\b(can|could|may|would|will) (i|you|we|someone|somebody|anyone|a|an|one)\b"
           r"|\b(i want|i need|i'd like|id like|i would like|let me|lemme|gimme|get me|please"
           r"|pls|plz|now|asap)\b|\?",
    "bot": r"\b(bot|bots|robot|ai|machine|automated|chatbot|assistant|automatic)\b",
    "bot_complaint": r"\b(bot|robot|ai|machine|assistant|chatbot)\b.{0,60}\b(no idea"
                     r"|doesn'?t understand|circles|same article|useless|can'?t|cannot|not)\b"
                     r"|\b(done|tired|sick) (talking|chatting) (to|with)|\bnot discussing\b"
                     r"|\bstop (sending|with)\b",
    "thanks": r"\b(thanks|thank you|thx|cheers|ty|grateful|appreciate(d)?|gracias|merci|danke"
              r"|obrigad[oa]|grazie)\b",
    "past_contact": r"\b(fixed|sorted|solved|resolved|helped|was (brilliant|great|helpful"
                    r"|amazing|lovely|kind)|spoke (to|with)|talked (to|with)|already|yesterday"
                    r"|last (week|time)|earlier|ya|deja|schon|gia|ja|gestern|ayer|hier|ieri|ontem"
                    r"|resolvio|resuelto|resolveu|gelost|geholfen|aide|risolto)\b",
    "negation": r"\b(no need|don'?t (need|want|wanna)|do not (need|want)|without|rather not"
                r"|never|not (looking|trying|asking)|nadie|personne|ninguem|niemand|nessuno"
                r"|non c'?e bisogno|no hace falta|pas besoin|nao preciso|kein bedarf)\b",
    "fine_anyway": r"\b(that'?s ok|thats ok|fine by me|either way|no problem|cool|no worries"
                   r"|doesn'?t matter|fine)\b",
    "third_party": r"\b(my (manager|boss|colleague|team|husband|wife|partner|accountant)"
                   r"|the (driver|courier|technician|engineer) (will|came|said|was)"
                   r"|(he|she|they) said)\b",
    "product_feature": r"\b(call (forwarding|waiting|log|history|quality)|calls|voicemail"
                       r"|video calls?|calling plan|minutes|meetings?|team (plan|members?"
                       r"|seats?|workspace|calendar)|agents? (role|seats?|license"
                       r"|permissions)|support ticket)\b",
    "phone": r"\b(phone number|number (i|to) (can )?(call|ring)|phone line|call (you|someone)"
             r"|callback|call me|ring me|give me a (call|ring)|hotline)\b",
    "other_language": r"\b(mitarbeiter|menschen|mensch|techniker|berater|support|atendente"
                      r"|operatore|operador|tecnico|gerente|humano|persona|agente|conseiller"
                      r"|personne|consulente|parlare|sprechen|reden|falar|verbinden|hablar"
                      r"|parler)\b",
    "about_people": r"\b(how many|do your|are your|what (hours|time)|when (is|are)"
                    r"|opening hours|hours)\b",
}
_COMPILED = {name: re.compile(pattern) for name, pattern in _CUES.items()}
_NAMED = re.compile(r"\b(?i:is|get|talk to|speak to|speak with|transfer me to"
                    r"|put me through to|with|from)\s+([A-Z][a-z]+)\b")
_NAMED_FROM = re.compile(r"\b([A-Z][a-z]+)\s+(from|in|on) (the |your )?\w+")
_NOT_NAMES = frozenset({"I", "The", "Is", "Hi", "Hello", "Hey", "Can", "Could", "Would",
                        "Thanks", "Thank", "My", "Please", "Our", "Your", "This", "That", "It",
                        "We", "You"})

#: feature names, in order (an artefact trained on another list refuses to load)
CUE_NAMES: tuple[str, ...] = (*_CUES, "named_colleague", "length", "shouting", "phrase_rule")


def cues(message: str) -> np.ndarray:
    """The cue vector of one message (0/1 flags, the length in words / 40 capped at 2)."""
    from app.responder.escalation import find_human_request, fuzzy_normalize

    text = fuzzy_normalize(message)
    flags = [1.0 if _COMPILED[name].search(text) else 0.0 for name in _CUES]
    named = any(m.group(1) not in _NOT_NAMES for m in _NAMED.finditer(message)) or any(
        m.group(1) not in _NOT_NAMES for m in _NAMED_FROM.finditer(message))
    letters = [c for c in message if c.isalpha()]
    shouting = len(letters) >= 4 and sum(c.isupper() for c in letters) > 0.6 * len(letters)
    flags += [1.0 if named else 0.0, min(len(text.split()), 80) / 40.0,
              1.0 if shouting else 0.0,
              1.0 if find_human_request(message) is not None else 0.0]
    return np.asarray(flags, dtype=np.float32)
