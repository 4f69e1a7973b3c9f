"""Code similarity: does a pasted and renamed copy of another student's answer, or of mlp_lib's own
implementation, rank at the top — and do independently written correct answers stay out?"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "fixtures"))

import answers  # noqa: E402
from autograder import similarity  # noqa: E402

CORPUS_NAME = "mlp_lib.losses.softmax_cross_entropy"


def fingerprints() -> dict:
    named = {"original": answers.ORIGINAL, "copy": answers.RENAMED_COPY, "from_mlp_lib": answers.FROM_MLP_LIB}
    named.update({f"independent{i}": a for i, a in enumerate(answers.INDEPENDENT)})
    return {k: similarity.fingerprint(v) for k, v in named.items()}


def ranked_pairs(prints: dict) -> list[tuple[float, str, str]]:
    common = similarity.common_fingerprints(list(prints.values()))
    names = sorted(prints)
    pairs = [(similarity.compare(prints[a], prints[b], ignore=common).score, a, b)
             for i, a in enumerate(names) for b in names[i + 1:]]
    return sorted(pairs, reverse=True)


def test_renaming_and_reformatting_change_nothing():
    a, b = similarity.tokens(answers.ORIGINAL), similarity.tokens(answers.RENAMED_COPY)
    assert [t for t, _ in a] == [t for t, _ in b]


def test_a_renamed_copy_of_another_students_answer_ranks_first_and_alone():
    pairs = ranked_pairs(fingerprints())
    top_score, *top = pairs[0]
    assert sorted(top) == ["copy", "original"] and top_score == 1.0
    assert all(score < similarity.THRESHOLD for score, *_ in pairs[1:]), pairs[:4]


def test_a_renamed_copy_of_mlp_libs_implementation_is_found_in_the_library():
    library = similarity.fingerprint(similarity.mlp_lib_sources()[CORPUS_NAME])
    scores = {name: similarity.containment(fp, library).score for name, fp in fingerprints().items()}
    assert scores["from_mlp_lib"] >= 0.9
    assert max(s for name, s in scores.items() if name != "from_mlp_lib") < similarity.THRESHOLD, scores


def test_the_side_by_side_lines_are_the_copied_ones():
    prints = fingerprints()
    s = similarity.compare(prints["original"], prints["copy"])
    # every line of the original's body is covered; the copy's docstring and added comment lines are not code
    assert set(range(2, 14)) <= set(s.lines_a)
    assert 2 not in s.lines_b                         # the copy's docstring


def test_short_answers_and_untouched_starter_code_are_never_compared():
    relu = "def relu_forward(x):\n    return np.maximum(x, 0.0), x\n"
    assert not similarity.fingerprint(relu).comparable
    stub = 'def softmax_cross_entropy(logits, y):\n    """doc"""\n    raise NotImplementedError()\n'
    left_as_released = similarity.fingerprint(stub, starter=stub)
    assert left_as_released.hashes == frozenset() and not left_as_released.comparable
    # the starter's own lines do not count towards a finished answer either
    finished = similarity.fingerprint(answers.ORIGINAL, starter=stub)
    assert finished.comparable and finished.tokens < len(similarity.tokens(answers.ORIGINAL))


def test_code_that_does_not_parse_has_no_fingerprint():
    assert similarity.fingerprint("def f(:\n    pass").hashes == frozenset()


def test_the_reference_corpus_has_mlp_libs_functions_and_the_solutions_keyed_by_function(tmp_path):
    import agtools
    from autograder.spec import load_spec

    course = agtools.make_course(tmp_path / "course")
    corpus = similarity.reference_corpus(course, load_spec(course, agtools.ASSIGNMENT))
    labels = {ref.label for ref in corpus["softmax_cross_entropy"]}
    assert {CORPUS_NAME, f"solutions/{agtools.ASSIGNMENT}"} <= labels
    assert "mlp_lib.layers.relu_forward" in {ref.label for ref in corpus["relu_forward"]}
