"""The JSON form of a search filter: Qdrant's `must` / `should` / `must_not`, parsed by pydantic.

    {"must": [{"key": "source", "match": {"any": ["Dawn", "Nournews"]}},
              {"key": "published", "range": {"gte": "2025-11-01", "lt": "2025-12-01"}}],
     "must_not": [{"has_id": ["nournews-larijani-visit"]}]}

A condition is one of (Qdrant's names): `{"key", "match": {"value"}}` or `{"key", "match":
{"any": [...]}}`; `{"key", "range": {"gt", "gte", "lt", "lte"}}` (numbers, or ISO 8601 dates such
as `2025-11-01` or `2025-11-01T09:00:00+03:30`); `{"is_empty": {"key"}}`; `{"has_id": [...]}`;
or a nested filter. What a filter means and the rules it must follow (known fields, one kind of
bound) live in `index.search.filters`; this module parses the JSON and hands any broken rule back
as a validation error (a 422 naming the field), and `to_filter` gives the domain object. Also the
query-string form of the common conditions (`QueryFilter`). Free of server code: the Python client
and the MCP server use it too.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from index.search.filters import FIELD_RULE, Filter, HasId, IsEmpty, Match, Range, RangeBound

Scalar = StrictStr | StrictInt | StrictFloat | StrictBool
KEY_DESCRIPTION = f"The field: {FIELD_RULE}."
DATE_RULE = "an ISO 8601 date such as 2025-11-01, or a date and time such as 2025-11-01T09:00:00+03:30"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class MatchValue(_Strict):
    value: Scalar = Field(description="The field equals this (text exactly, numbers by value).")


class MatchAny(_Strict):
    any: list[Scalar] = Field(min_length=1, description="The field equals one of these.")


class RangeBounds(_Strict):
    gt: StrictInt | StrictFloat | StrictStr | None = Field(None, description="Greater than.")
    gte: StrictInt | StrictFloat | StrictStr | None = Field(None, description="Greater than or equal.")
    lt: StrictInt | StrictFloat | StrictStr | None = Field(None, description="Less than.")
    lte: StrictInt | StrictFloat | StrictStr | None = Field(None, description="Less than or equal.")


def _match_kind(value: Any) -> str | None:
    """`any` or `value`, by the key a match object has; None (a validation error) if not an object."""
    if isinstance(value, dict):
        return "any" if "any" in value else "value"
    if isinstance(value, MatchAny | MatchValue):
        return "any" if isinstance(value, MatchAny) else "value"
    return None


class FieldCondition(_Strict):
    key: str = Field(description=KEY_DESCRIPTION, examples=["source", "published", "metadata.section"])
    match: (
        Annotated[
            Annotated[MatchValue, Tag("value")] | Annotated[MatchAny, Tag("any")],
            Discriminator(_match_kind),
        ]
        | None
    ) = Field(None, description="Equality: `value`, or `any` of several.")
    range: RangeBounds | None = Field(
        None, description="Bounds: numbers, or dates (a date alone covers its whole day)."
    )

    @model_validator(mode="after")
    def _follows_the_rules(self) -> FieldCondition:
        self.to_condition()
        return self

    def to_condition(self) -> Match | Range:
        if (self.match is None) == (self.range is None):
            raise ValueError(f"condition on {self.key!r} needs exactly one of `match` or `range`")
        if isinstance(self.match, MatchValue):
            return Match(self.key, (self.match.value,))
        if isinstance(self.match, MatchAny):
            return Match(self.key, tuple(self.match.any))
        bounds = self.range.model_dump() if self.range is not None else {}
        return Range(self.key, **{name: _bound(name, value) for name, value in bounds.items()})


class KeyRef(_Strict):
    key: str = Field(description=KEY_DESCRIPTION)


class IsEmptyCondition(_Strict):
    is_empty: KeyRef = Field(description="The field has no value (`must_not` of it: the field exists).")

    @model_validator(mode="after")
    def _follows_the_rules(self) -> IsEmptyCondition:
        self.to_condition()
        return self

    def to_condition(self) -> IsEmpty:
        return IsEmpty(self.is_empty.key)


class HasIdCondition(_Strict):
    has_id: list[StrictStr] = Field(min_length=1, description="The document is one of these ids.")

    def to_condition(self) -> HasId:
        return HasId(tuple(self.has_id))


def _kind(value: Any) -> str:
    """Which condition a JSON object is, by the key that names it (clear errors, not a union's)."""
    names: set[str]
    if isinstance(value, dict):
        names = set(value)
    else:
        names = {name for name in ("key", "is_empty", "has_id") if getattr(value, name, None) is not None}
    if "key" in names:
        return "field"
    if "is_empty" in names:
        return "is_empty"
    if "has_id" in names:
        return "has_id"
    return "filter"


Condition = Annotated[
    Annotated[FieldCondition, Tag("field")]
    | Annotated[IsEmptyCondition, Tag("is_empty")]
    | Annotated[HasIdCondition, Tag("has_id")]
    | Annotated["SearchFilter", Tag("filter")],
    Discriminator(_kind),
]


class SearchFilter(_Strict):
    """Which documents a search may answer from (Qdrant's filter shape)."""

    must: list[Condition] = Field(default_factory=list, description="Every one of these holds.")
    should: list[Condition] = Field(
        default_factory=list, description="At least one of these holds (when any are given)."
    )
    must_not: list[Condition] = Field(default_factory=list, description="None of these holds.")

    def to_filter(self) -> Filter:
        """The domain filter; `FilterError` (a ValueError) if it breaks one of its rules."""
        return Filter(
            must=tuple(condition.to_condition() for condition in self.must),
            should=tuple(condition.to_condition() for condition in self.should),
            must_not=tuple(condition.to_condition() for condition in self.must_not),
        )

    def to_condition(self) -> Filter:
        return self.to_filter()

    def to_json(self) -> dict[str, Any]:
        """The filter as a request body carries it (unset parts left out)."""
        return self.model_dump(mode="json", exclude_none=True, exclude_defaults=True)


def _bound(name: str, value: int | float | str | None) -> RangeBound | None:
    if value is None or isinstance(value, int | float):
        return value
    try:
        return dt.date.fromisoformat(value) if len(value) == 10 else dt.datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"range bound {name} {value!r} is not a date: use {DATE_RULE}") from None


def validation_message(error: ValidationError) -> str:
    """A broken filter or option in one line per problem, `where: what` (for the CLI and MCP,
    which have no 422 body to put the details in)."""
    problems = []
    for problem in error.errors(include_url=False):
        where = ".".join(str(part) for part in problem["loc"])
        what = problem["msg"].removeprefix("Value error, ")  # pydantic's prefix for our own rules
        problems.append(what if not where or what.startswith(where) else f"{where}: {what}")
    return "; ".join(problems)


def parse_date(name: str, value: str) -> dt.date:
    """A query parameter's ISO 8601 date (`published_after`, `as_of`); ValueError naming it if not one."""
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{name} {value!r} is not a date: use an ISO 8601 date such as 2025-11-01") from None


class QuestionDates(BaseModel):
    """Whether a search also keeps to the time range its question states, and as of when."""

    dates_from_question: bool = Field(
        True,
        description="Also keep to the time range the question states ('in November 2025', 'since 1 "
        "October', 'this year'), when the documents have dates; the response's `filter_from_question` "
        "says what was applied. `false` turns it off.",
    )
    as_of: str | None = Field(
        None,
        description="The date relative phrases ('this year', 'last month') are read against: an ISO "
        "8601 date; today (UTC) by default.",
        examples=["2025-12-01"],
    )

    @field_validator("as_of")
    @classmethod
    def _as_of_is_a_date(cls, value: str | None) -> str | None:
        if value is not None:
            parse_date("as_of", value)
        return value

    def question_as_of(self) -> dt.date | None:
        """The date to read the question's own dates against; None when they are not to be read."""
        if not self.dates_from_question:
            return None
        return dt.datetime.now(dt.UTC).date() if self.as_of is None else parse_date("as_of", self.as_of)


class QueryFilter(BaseModel):
    """The common conditions as query parameters (`GET /search`, `rag ask`): each given one must
    hold; a repeated parameter matches any of its values."""

    source: list[str] = Field(default_factory=list, description="Only these publications (repeatable).")
    author: list[str] = Field(default_factory=list, description="Only these authors (repeatable).")
    document_id: list[str] = Field(default_factory=list, description="Only these documents (repeatable).")
    published_after: str | None = Field(
        None, description="Only documents published on or after this date (ISO 8601, e.g. 2025-11-01)."
    )
    published_before: str | None = Field(
        None, description="Only documents published on or before this date (ISO 8601)."
    )

    @field_validator("published_after", "published_before")
    @classmethod
    def _is_a_date(cls, value: str | None, info: Any) -> str | None:
        if value is not None:
            parse_date(info.field_name, value)
        return value

    def query_filter(self) -> Filter | None:
        """These conditions as a filter, None when none is given."""
        conditions: list[Match | Range | HasId] = [
            Match(key, tuple(values))
            for key, values in (("source", self.source), ("author", self.author))
            if values
        ]
        if self.document_id:
            conditions.append(HasId(tuple(self.document_id)))
        after = None if self.published_after is None else parse_date("published_after", self.published_after)
        before = (
            None if self.published_before is None else parse_date("published_before", self.published_before)
        )
        if after is not None or before is not None:
            conditions.append(Range("published", gte=after, lte=before))
        return Filter(must=tuple(conditions)) if conditions else None
