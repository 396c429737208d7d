"""Unit tests for obo_auth.resources: declarations, the scope table, scope validation.

No mlflow here; the integration sibling is tests/test_policy.py (policies logged with mlflow,
and the mlflow side of the declarations).
"""

from __future__ import annotations

import dataclasses
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from obo_auth.errors import ArgumentTypeError, InvalidScopeError, OboAuthError, ResourceDeclarationError
from obo_auth.resources import (
    RESOURCE_SCOPES,
    GenieSpace,
    ResourceDeclaration,
    ServingEndpoint,
    SqlWarehouse,
    UCConnection,
    UCFunction,
    UCTable,
    VectorSearchIndex,
    declaration_class,
    required_scopes,
    validate_scopes,
)
from obo_auth.scopes import MODEL_SERVING_ALLOWED_SCOPES

SQL = ["sql.statement-execution", "sql.warehouses"]


@pytest.mark.parametrize(
    ("declaration", "scopes"),
    [
        (
            VectorSearchIndex("main.docs.handbook_index"),
            ["serving.serving-endpoints", "vectorsearch.vector-search-endpoints", "vectorsearch.vector-search-indexes"],
        ),
        (ServingEndpoint("chat-model"), ["serving.serving-endpoints"]),
        (GenieSpace("01ef0123456789abcdef0123456789ab"), ["dashboards.genie"]),
        (SqlWarehouse("abcdef1234567890"), SQL),
        (UCConnection("github_api"), ["catalog.connections", "serving.serving-endpoints"]),
        (UCTable("main.sales.orders"), SQL),
        (UCFunction("main.tools.lookup_order"), SQL),
    ],
)
def test_each_resource_needs_its_documented_scopes(declaration, scopes):
    assert declaration.on_behalf_of_user is True  # the documented default
    assert required_scopes(declaration) == scopes


def test_every_declaration_has_a_table_row_with_allowed_scopes_and_sources():
    assert set(RESOURCE_SCOPES) == set(ResourceDeclaration.__subclasses__())
    for row in RESOURCE_SCOPES.values():
        assert row, "a row without scopes would make an OBO declaration silently grant nothing"
        for scope, source in row.items():
            assert scope in MODEL_SERVING_ALLOWED_SCOPES
            assert source.strip()


@pytest.mark.parametrize("cls", list(RESOURCE_SCOPES))
def test_each_declaration_names_its_mlflow_twins_resource_type(cls):
    # The MLmodel names resources by these types; review and serving map them back without mlflow.
    declaration = cls(cls._example)
    assert cls.resource_type == declaration.to_mlflow().type.value
    assert declaration_class(cls.resource_type) is cls


def test_a_resource_type_without_a_declaration_has_no_class():
    assert declaration_class("app") is None


def test_resources_reached_as_the_agent_need_no_user_scopes():
    assert required_scopes(ServingEndpoint("chat-model", on_behalf_of_user=False)) == []
    assert required_scopes() == []


def test_required_scopes_are_sorted_and_deduplicated():
    scopes = required_scopes(
        UCTable("main.sales.orders"), SqlWarehouse("abcdef1234567890"), UCConnection("github_api"), ServingEndpoint("chat")
    )
    assert scopes == ["catalog.connections", "serving.serving-endpoints", "sql.statement-execution", "sql.warehouses"]


# -- declarations ------------------------------------------------------------------------


def test_on_behalf_of_user_is_keyword_only_and_declarations_are_frozen_values():
    with pytest.raises(TypeError):
        VectorSearchIndex("main.docs.handbook_index", False)
    index = VectorSearchIndex("main.docs.handbook_index", on_behalf_of_user=False)
    with pytest.raises(dataclasses.FrozenInstanceError):
        index.name = "main.docs.other"
    assert index == VectorSearchIndex("main.docs.handbook_index", on_behalf_of_user=False)
    assert index.identifier == "main.docs.handbook_index"


@pytest.mark.parametrize("cls", [VectorSearchIndex, UCTable, UCFunction])
@pytest.mark.parametrize("name", ["handbook_index", "docs.handbook_index", "a.b.c.d", "a..c", "main.docs.my index", ""])
def test_unity_catalog_names_must_have_three_parts(cls, name):
    with pytest.raises(ResourceDeclarationError, match=r"catalog\.schema\.name.*e\.g\. " + cls.__name__):
        cls(name)


@pytest.mark.parametrize("cls", [ServingEndpoint, GenieSpace, SqlWarehouse, UCConnection])
@pytest.mark.parametrize("name", ["", "my warehouse", "a/b", "a.b", "`x`"])
def test_single_names_have_no_dots_spaces_or_slashes(cls, name):
    with pytest.raises(ResourceDeclarationError, match=r"single name.*e\.g\. " + cls.__name__):
        cls(name)


def test_identifier_and_flag_types_are_checked():
    with pytest.raises(ResourceDeclarationError, match="catalog.schema.name"):
        VectorSearchIndex(42)
    with pytest.raises(ResourceDeclarationError, match="on_behalf_of_user must be True or False, got 'false'"):
        ServingEndpoint("chat", on_behalf_of_user="false")


def test_declaration_errors_belong_to_the_tree_and_to_the_builtin_kind():
    with pytest.raises(OboAuthError) as caught:
        UCTable("orders")
    assert isinstance(caught.value, ValueError)
    with pytest.raises(OboAuthError) as caught:
        required_scopes("main.docs.handbook_index")
    assert isinstance(caught.value, TypeError)


@pytest.mark.parametrize(
    ("item", "hint"),
    [
        ("main.docs.handbook_index", "plain string: say what it is, e.g. VectorSearchIndex('main.docs.handbook_index')"),
        ([ServingEndpoint("chat")], "separate arguments"),
        (42, "expected a resource declaration (VectorSearchIndex, ServingEndpoint"),
    ],
)
def test_non_declarations_are_refused_with_what_to_use(item, hint):
    with pytest.raises(ArgumentTypeError, match=re.escape(hint)):
        required_scopes(ServingEndpoint("chat"), item)


# -- scope validation ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typo", "nearest"),
    [
        ("vectorsearch.vector-search-index", "vectorsearch.vector-search-indexes"),
        ("sql.warehouse", "sql.warehouses"),
        ("vector_search", "vector-search"),
        ("dashboard.genie", "dashboards.genie"),
    ],
)
def test_an_unknown_scope_is_refused_naming_the_nearest_valid_one(typo, nearest):
    with pytest.raises(InvalidScopeError, match=re.escape(f"{typo!r} (did you mean {nearest!r}?)")):
        validate_scopes(["sql", typo])


def test_an_unknown_scope_with_no_near_match_lists_the_allowed_ones():
    with pytest.raises(InvalidScopeError) as caught:
        validate_scopes(["zzzzzzzz"])
    assert "did you mean" not in str(caught.value)
    assert "Allowed scopes: ai-gateway, apps, apps.apps" in str(caught.value)


def test_validate_scopes_normalises_and_accepts_the_whole_allowlist():
    assert validate_scopes(["sql", " sql ", "genie"]) == ["genie", "sql"]
    assert validate_scopes(MODEL_SERVING_ALLOWED_SCOPES) == sorted(MODEL_SERVING_ALLOWED_SCOPES)


@pytest.mark.parametrize(("scopes", "hint"), [("sql", "not one string"), (["sql", None], "got NoneType")])
def test_validate_scopes_refuses_non_strings(scopes, hint):
    with pytest.raises(ArgumentTypeError, match=hint):
        validate_scopes(scopes)


# -- properties -----------------------------------------------------------------------------

_part = st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True)
_uc_name = st.builds(lambda *parts: ".".join(parts), _part, _part, _part)
_as_whom = st.booleans()
declarations = st.one_of(
    st.builds(VectorSearchIndex, _uc_name, on_behalf_of_user=_as_whom),
    st.builds(UCTable, _uc_name, on_behalf_of_user=_as_whom),
    st.builds(UCFunction, _uc_name, on_behalf_of_user=_as_whom),
    st.builds(ServingEndpoint, _part, on_behalf_of_user=_as_whom),
    st.builds(GenieSpace, _part, on_behalf_of_user=_as_whom),
    st.builds(SqlWarehouse, _part, on_behalf_of_user=_as_whom),
    st.builds(UCConnection, _part, on_behalf_of_user=_as_whom),
)
declaration_lists = st.lists(declarations, max_size=8)


@given(declaration_lists, st.data())
def test_required_scopes_ignore_order(resources, data):
    shuffled = data.draw(st.permutations(resources))
    assert required_scopes(*shuffled) == required_scopes(*resources)


@given(declaration_lists)
def test_required_scopes_are_idempotent_sorted_and_valid(resources):
    scopes = required_scopes(*resources)
    assert required_scopes(*resources, *resources) == scopes
    assert scopes == sorted(set(scopes))
    assert validate_scopes(scopes) == scopes


@given(declaration_lists, declaration_lists)
def test_adding_resources_never_removes_scopes(resources, more):
    assert set(required_scopes(*resources)) <= set(required_scopes(*resources, *more))


@given(declaration_lists)
def test_required_scopes_are_the_union_of_each_obo_resource_row(resources):
    expected = {scope for r in resources if r.on_behalf_of_user for scope in RESOURCE_SCOPES[type(r)]}
    assert set(required_scopes(*resources)) == expected


@given(st.sampled_from(sorted(MODEL_SERVING_ALLOWED_SCOPES)), st.data())
def test_a_one_character_typo_is_refused_with_a_valid_suggestion(scope, data):
    cut = data.draw(st.integers(0, len(scope) - 1))
    typo = scope[:cut] + scope[cut + 1 :]
    if typo in MODEL_SERVING_ALLOWED_SCOPES:  # deleting a character made another valid scope
        assert validate_scopes([typo]) == [typo]
        return
    with pytest.raises(InvalidScopeError) as caught:
        validate_scopes([typo])
    suggestion = re.search(rf"{re.escape(repr(typo))} \(did you mean '([^']+)'\?\)", str(caught.value))
    assert suggestion and suggestion.group(1) in MODEL_SERVING_ALLOWED_SCOPES


@given(declarations)
def test_a_declaration_reads_back_from_its_repr(declaration):
    namespace = {cls.__name__: cls for cls in RESOURCE_SCOPES}
    assert eval(repr(declaration), namespace) == declaration
