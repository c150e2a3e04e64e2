"""Answer models behind one small interface (``AnswerModel``)."""
