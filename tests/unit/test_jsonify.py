"""The encodings the JSON answers are built with."""

import math

import orjson
from hypothesis import given
from hypothesis import strategies as st

from jsonify import number_pairs_as_objects

numbers = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
)


@given(st.lists(st.tuples(numbers, numbers), max_size=50))
def test_number_pairs_encode_exactly_as_the_objects_they_stand_for(pairs):
    objects = [{"time": first, "reading": second} for first, second in pairs]
    assert orjson.dumps(number_pairs_as_objects(pairs, "time", "reading")) == orjson.dumps(objects)


def test_no_pairs_are_an_empty_list():
    assert orjson.dumps(number_pairs_as_objects([], "time", "reading")) == b"[]"


def test_pairs_embed_inside_a_larger_answer():
    answer = {"readings": number_pairs_as_objects([(1, 0.5), (2, 1e-7)], "time", "reading"), "n": 2}
    decoded = orjson.loads(orjson.dumps(answer))
    assert decoded == {"readings": [{"time": 1, "reading": 0.5}, {"time": 2, "reading": 1e-7}], "n": 2}
    assert math.isclose(decoded["readings"][1]["reading"], 1e-7)
