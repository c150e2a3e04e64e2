"""``SupportbotRetriever`` on the sample knowledge base, alone and inside an LCEL chain."""

from __future__ import annotations

import pytest
from langchain_core.documents import Document
from langchain_core.prompts import PromptTemplate
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import Runnable, RunnableLambda, RunnablePassthrough
from pydantic import ValidationError

from app.integrations.langchain import SupportbotRetriever
from app.knowledge.base import KnowledgeBase
from app.knowledge.retriever import HybridRetriever

PASSWORD_QUESTION = "how do I reset my password"

PROMPT = PromptTemplate.from_template(
    "Answer from the context only.\n\nContext:\n{context}\n\nQuestion: {question}\nAnswer:"
)


@pytest.fixture(scope="module")
def hybrid(sample_kb: KnowledgeBase) -> HybridRetriever:
    return HybridRetriever(sample_kb)


@pytest.fixture
def retriever(hybrid: HybridRetriever) -> SupportbotRetriever:
    return SupportbotRetriever(retriever=hybrid)


def format_docs(docs: list[Document]) -> str:
    return "\n\n".join(f"[{d.metadata['article_id']}] {d.metadata['title']}\n{d.page_content}"
                       for d in docs)


def rag_chain(retriever: SupportbotRetriever) -> Runnable[str, str]:
    """Retriever → prompt → a stand-in model that returns the prompt it was given, so the test
    sees exactly what a real LLM would have been shown."""
    echo_llm = RunnableLambda(lambda prompt: prompt.to_string())
    return (
        {"context": retriever | format_docs, "question": RunnablePassthrough()}
        | PROMPT
        | echo_llm
    )


def test_is_a_langchain_retriever_returning_documents(
    retriever: SupportbotRetriever, hybrid: HybridRetriever, sample_kb: KnowledgeBase,
) -> None:
    assert isinstance(retriever, BaseRetriever)
    docs = retriever.invoke(PASSWORD_QUESTION)
    assert 0 < len(docs) <= 4
    assert all(isinstance(d, Document) for d in docs)
    assert docs[0].metadata["article_id"] == "reset-password"
    # Same ranking and passages as the hybrid retriever itself.
    direct = hybrid.search(PASSWORD_QUESTION, k=4)
    assert [d.metadata["article_id"] for d in docs] == [r.article_id for r in direct]
    chunks = {c.chunk_id: c for c in sample_kb.manifest.chunks("articles")}
    for d, r in zip(docs, direct, strict=True):
        assert d.page_content == r.snippet == chunks[r.chunk_id].text
        assert d.metadata["chunk_id"] == r.chunk_id
        assert d.metadata["title"] == r.title
        assert d.metadata["url"] == r.url and d.metadata["url"].startswith("https://")
        assert d.metadata["score"] == r.score
        assert d.metadata["collection"] == "articles"
    scores = [d.metadata["score"] for d in docs]
    assert scores == sorted(scores, reverse=True)


def test_lcel_chain_puts_the_right_article_in_the_prompt(
    retriever: SupportbotRetriever,
) -> None:
    prompt = rag_chain(retriever).invoke(PASSWORD_QUESTION)
    assert f"Question: {PASSWORD_QUESTION}" in prompt
    assert "[reset-password] Reset your password" in prompt


def test_lcel_chain_batch_matches_invoke(retriever: SupportbotRetriever) -> None:
    questions = [PASSWORD_QUESTION, "how do I descale my kettle",
                 "I was charged twice for the same order"]
    chain = rag_chain(retriever)
    prompts = chain.batch(questions)
    assert len(prompts) == 3
    expected_ids = ["reset-password", "kettle-descaling", "double-charge"]
    for question, expected, prompt in zip(questions, expected_ids, prompts, strict=True):
        assert f"Question: {question}" in prompt
        assert f"[{expected}]" in prompt
        assert prompt == chain.invoke(question)
    docs_per_question = retriever.batch(questions)
    assert [docs[0].metadata["article_id"] for docs in docs_per_question] == expected_ids


@pytest.mark.parametrize("k", [1, 2, 6])
def test_k_is_honoured(hybrid: HybridRetriever, k: int) -> None:
    docs = SupportbotRetriever(retriever=hybrid, k=k).invoke("refund for a returned item")
    assert len(docs) == k
    assert len({d.metadata["article_id"] for d in docs}) == k  # one passage per article


def test_category_filter(hybrid: HybridRetriever) -> None:
    question = "how do I get my money back"
    unfiltered = SupportbotRetriever(retriever=hybrid, k=5).invoke(question)
    assert {d.metadata["category"] for d in unfiltered} != {"billing"}
    billing = SupportbotRetriever(retriever=hybrid, k=5, category="billing").invoke(question)
    assert billing
    assert all(d.metadata["category"] == "billing" for d in billing)


def test_locale_filter(hybrid: HybridRetriever) -> None:
    spanish = SupportbotRetriever(retriever=hybrid, k=3, locale="es")
    docs = spanish.invoke("¿Cómo restablezco mi contraseña?")
    assert docs and all(d.metadata["locale"].startswith("es") for d in docs)
    assert docs[0].metadata["article_id"] == "reset-password-es"
    english = SupportbotRetriever(retriever=hybrid, k=3, locale="en").invoke(PASSWORD_QUESTION)
    assert english and all(d.metadata["locale"].startswith("en") for d in english)
    assert english[0].metadata["article_id"] == "reset-password"
    # And in a chain: the Spanish-only retriever never feeds an English article to the prompt.
    prompt = rag_chain(spanish).invoke(PASSWORD_QUESTION)
    assert "[reset-password-es]" in prompt
    assert "[reset-password]" not in prompt


def test_per_call_options_override_the_defaults(retriever: SupportbotRetriever) -> None:
    docs = retriever.invoke("how do I get my money back", k=2, category="billing")
    assert len(docs) == 2
    assert all(d.metadata["category"] == "billing" for d in docs)
    assert retriever.k == 4 and retriever.category is None  # the instance is unchanged
    with pytest.raises(TypeError, match="unexpected search option"):
        retriever.invoke(PASSWORD_QUESTION, top_k=2)
    with pytest.raises(ValueError, match="positive integer"):
        retriever.invoke(PASSWORD_QUESTION, k=0)


def test_past_conversations_only_when_asked_for(
    hybrid: HybridRetriever, sample_kb: KnowledgeBase,
) -> None:
    assert sample_kb.manifest.counts()["conversations"]["documents"] > 0
    question = "my package never arrived"
    default = SupportbotRetriever(retriever=hybrid, k=10)
    assert default.collections == ("articles",)
    assert {d.metadata["collection"] for d in default.invoke(question)} == {"articles"}
    only_conv = SupportbotRetriever(retriever=hybrid, k=5, collections=("conversations",))
    conv_docs = only_conv.invoke(question)
    assert conv_docs and {d.metadata["collection"] for d in conv_docs} == {"conversations"}
    assert {d.metadata["collection"] for d in default.invoke(
        question, collections=("conversations",))} == {"conversations"}


def test_invalid_configuration_is_rejected(hybrid: HybridRetriever) -> None:
    with pytest.raises(ValidationError):
        SupportbotRetriever(retriever=hybrid, k=0)
    with pytest.raises(ValidationError, match="unknown collection"):
        SupportbotRetriever(retriever=hybrid, collections=("tickets",))
    with pytest.raises(ValidationError, match="at least one"):
        SupportbotRetriever(retriever=hybrid, collections=())
    with pytest.raises(ValidationError):
        SupportbotRetriever(retriever="not a retriever")  # type: ignore[arg-type]


def test_blank_query_returns_nothing(retriever: SupportbotRetriever) -> None:
    assert retriever.invoke("   ") == []


@pytest.mark.asyncio
async def test_async_invoke(retriever: SupportbotRetriever) -> None:
    docs = await retriever.ainvoke(PASSWORD_QUESTION)
    assert docs[0].metadata["article_id"] == "reset-password"
