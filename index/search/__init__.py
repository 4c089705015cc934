"""The read path: a reader over one commit, candidate generation, fusion, duplicates, answer sentences,
answerability, document ranking, feedback and context windows, wired by `retrieval`."""
