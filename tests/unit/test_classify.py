"""What an answer of the API stands for: records, an error to retry, or one to stop at."""

from __future__ import annotations

import pytest

from etl_contacts.source.errors import AuthError, SourceError, TransientError
from etl_contacts.source.http import classify

TOKEN = "s3cr3t-token-0123456789"
JSON = "application/json"


@pytest.mark.parametrize(("status", "error"), [(400, AuthError), (403, SourceError)])
def test_a_token_the_server_repeats_back_is_masked(status: int, error: type[Exception]) -> None:
    body = b'{"success":false,"message":"Cast to ObjectId failed for value \\"%s\\""}' % (
        TOKEN.encode()
    )
    with pytest.raises(error) as refused:
        classify(status, JSON, body, None, secret=TOKEN)
    assert TOKEN not in str(refused.value)
    assert "Cast to ObjectId failed for value" in str(refused.value)


@pytest.mark.parametrize("data", [b"[]", b'[{"_id": "665f1c2e9b1d4a0012345678"}]'])
def test_a_200_saying_success_false_is_retried_not_read_as_records(data: bytes) -> None:
    """Taken for an empty page, a failed query ended its window there, and the day was
    recorded as read with nothing in it."""
    body = b'{"success":false,"message":"operation exceeded time limit","data":%s}' % data
    with pytest.raises(TransientError) as failed:
        classify(200, JSON, body, None, secret=TOKEN)
    assert failed.value.cause == "unsuccessful"
    assert "operation exceeded time limit" in str(failed.value)


def test_text_cut_inside_a_character_pair_is_read_with_a_replacement_character() -> None:
    """A lone UTF-16 surrogate (an emoji cut in half by a preview) is valid JSON but no
    PostgreSQL text: the page is read, the broken half replaced."""
    body = b'{"success":true,"data":[{"_id":"a","lastMessage":{"text":"see you \\ud83d"}}]}'
    (record,) = classify(200, JSON, body, None, secret=TOKEN)
    assert isinstance(record, dict)
    assert record["lastMessage"] == {"text": "see you \ufffd"}
    assert record["lastMessage"]["text"].encode()  # encodable: PostgreSQL can store it


def test_a_whole_surrogate_pair_beside_a_cut_one_stays_one_character() -> None:
    body = b'{"success":true,"data":[{"_id":"a","name":"\\ud83d\\ude00","text":"\\ude00"}]}'
    (record,) = classify(200, JSON, body, None, secret=TOKEN)
    assert isinstance(record, dict)
    assert (record["name"], record["text"]) == ("\U0001f600", "\ufffd")


def test_a_body_that_is_not_json_is_retried() -> None:
    with pytest.raises(TransientError) as failed:
        classify(200, JSON, b'{"success":true,"data":[', None, secret=TOKEN)
    assert failed.value.cause == "bad_json"
