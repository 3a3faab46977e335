"""The arguments of a tool function: a pydantic model, its JSON schema, and validation.

Each parameter becomes a field of a generated model, under an internal name with the
parameter's name as its alias (so any parameter name works, even ``json`` or ``_x``).
Validation turns the model's JSON arguments into the values to call the function with.
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, create_model
from pydantic.errors import PydanticSchemaGenerationError, PydanticUserError
from pydantic.fields import FieldInfo
from pydantic.json_schema import GenerateJsonSchema
from pydantic_core import PydanticUndefined

from miniagents.ext.tools.errors import ToolCallError, ToolDefinitionError
from miniagents.miniagents import InteractionContext
from miniagents.miniagents.lowlevel import called_function

__all__ = ["ArgumentModel", "partial_keywords"]

_NAMED = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


class _SchemaWithoutTitles(GenerateJsonSchema):
    """Pydantic's JSON schema without the titles it derives from field names (noise to a model)."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False


@dataclass(frozen=True)
class ArgumentModel:
    """The named parameters of a callable as a validating model and a JSON schema."""

    tool: str
    model: type[BaseModel]
    names: tuple[tuple[str, str], ...]
    """``(field name, parameter name)`` of each parameter, in order."""
    positional: int
    """How many of the first parameters are positional-only."""
    schema: dict[str, object]

    @classmethod
    def of(
        cls,
        func: Callable[..., object],
        parameters: Sequence[inspect.Parameter],
        descriptions: Mapping[str, str],
        tool: str,
    ) -> ArgumentModel:
        """Read ``parameters`` of ``func`` (the ones the model fills in) for the tool ``tool``.

        Raises:
            ToolDefinitionError: for a parameter without an annotation, of a type that has no
                JSON schema, with a default its type refuses, or taking extra positional
                arguments.
        """
        hints = _type_hints(func, tool)
        fields: dict[str, Any] = {}
        names: list[tuple[str, str]] = []
        positional = 0
        for index, parameter in enumerate(parameters):
            if parameter.kind is inspect.Parameter.VAR_KEYWORD:
                continue  # nothing the model can know about: left out of the schema
            if parameter.kind is inspect.Parameter.VAR_POSITIONAL:
                raise ToolDefinitionError(
                    f"The tool {tool} takes extra positional arguments (*{parameter.name}), "
                    "which a model cannot give: models pass arguments by name. Take a "
                    f"list instead, e.g. `{parameter.name}: list[str]`."
                )
            if parameter.kind is inspect.Parameter.POSITIONAL_ONLY:
                positional += 1
            annotation = hints.get(parameter.name, inspect.Parameter.empty)
            if annotation is inspect.Parameter.empty and index == 0 and _unbound(parameter):
                *_, owner, method = f"Class.{getattr(func, '__qualname__', tool)}".split(".")
                raise ToolDefinitionError(
                    f"The tool {tool} takes {parameter.name!r} first: it is a method taken "
                    f"from its class ({owner}.{method}), which a model cannot call. Give the "
                    f"method of an instance instead, e.g. tools=[{owner}(...).{method}]."
                )
            if annotation is InteractionContext:
                name = getattr(func, "__name__", tool)
                raise ToolDefinitionError(
                    f"The tool {tool} takes the interaction context ({parameter.name}), as an "
                    "agent's function does, but it is a plain function: decorate it with "
                    f"@miniagent (`@miniagent async def {name}(ctx: InteractionContext, "
                    "...)`) and give the agent as the tool."
                )
            if annotation is inspect.Parameter.empty:
                raise ToolDefinitionError(
                    f"The parameter {parameter.name!r} of the tool {tool} has no type "
                    "annotation, so its JSON schema is unknown. Annotate it, e.g. "
                    f"`{parameter.name}: str`."
                )
            _check_default(parameter, annotation, tool)
            field_name = f"arg_{index}"
            fields[field_name] = (annotation, _field(parameter, annotation, descriptions))
            names.append((field_name, parameter.name))
        model = _model(fields, names, tool)
        return cls(tool, model, tuple(names), positional, _schema(model, names, tool))

    def validate(self, arguments: Mapping[str, object]) -> tuple[list[object], dict[str, object]]:
        """The positional and keyword arguments to call the function with.

        Raises:
            ToolCallError: telling the model which arguments are wrong and how.
        """
        try:
            values = self.model.model_validate(dict(arguments))
        except ValidationError as error:
            raise ToolCallError(
                f"Invalid arguments for the tool {self.tool}: {_problems(error)}. "
                "Call it again with arguments that match its schema."
            ) from None
        args: list[object] = []
        kwargs: dict[str, object] = {}
        for index, (field_name, name) in enumerate(self.names):
            value = getattr(values, field_name)
            if index < self.positional:
                args.append(value)
            else:
                kwargs[name] = value
        return args, kwargs


def partial_keywords(func: Callable[..., object]) -> set[str]:
    """The names of the keyword arguments that the ``functools.partial`` s of ``func`` bind.

    They are fixed at the call, not the model's: a tool leaves them out of its schema.
    """
    bound: set[str] = set()
    while isinstance(func, functools.partial):
        bound.update(func.keywords)
        func = func.func
    return bound


def _type_hints(func: Callable[..., object], tool: str) -> dict[str, Any]:
    target = inspect.unwrap(called_function(func))  # a functools.partial's: its function's
    if not (inspect.isfunction(target) or inspect.ismethod(target)):
        target = type(target).__call__  # a callable object: the hints of its __call__
    try:
        return typing.get_type_hints(target, include_extras=True)
    except Exception as error:
        raise ToolDefinitionError(
            f"The type annotations of the tool {tool} cannot be resolved ({error}). Define "
            "the types they name at module level, or import them where the tool is defined."
        ) from error


def _field(
    parameter: inspect.Parameter, annotation: object, descriptions: Mapping[str, str]
) -> FieldInfo:
    options: dict[str, Any] = {"alias": parameter.name}
    description = descriptions.get(parameter.name)
    if description and not _described(annotation):  # Annotated[..., Field(description=...)] wins
        options["description"] = description
    default: object = parameter.default
    if default is inspect.Parameter.empty:
        default = PydanticUndefined
    return cast(FieldInfo, Field(default, **options))


def _unbound(parameter: inspect.Parameter) -> bool:
    """Whether ``parameter`` is the ``self`` (or ``cls``) of a method taken from its class."""
    return parameter.name in ("self", "cls") and parameter.kind in _NAMED


def _check_default(parameter: inspect.Parameter, annotation: object, tool: str) -> None:
    """Refuse a default that the parameter's own type refuses (its schema would be a lie).

    Raises:
        ToolDefinitionError: naming the parameter, its default and how to declare it.
    """
    default = parameter.default
    if default is inspect.Parameter.empty:
        return
    try:
        adapter: TypeAdapter[object] = TypeAdapter(cast(Any, annotation))
        adapter.validate_python(default)
    except ValidationError:
        pass
    except (PydanticSchemaGenerationError, PydanticUserError):
        return  # a type pydantic cannot validate: _model says so
    else:
        return
    name = parameter.name
    shown = _type_name(annotation)
    fix = (
        f"declare it `{name}: {shown} | None = None`"
        if default is None
        else f"give it a default of its type, or widen its type to take {default!r}"
    )
    raise ToolDefinitionError(
        f"The parameter {name!r} of the tool {tool} is typed {shown}, but its default, "
        f"{default!r}, is not of that type, so the schema the model reads would contradict the "
        f"function: {fix}."
    )


def _described(annotation: object) -> bool:
    if typing.get_origin(annotation) is not typing.Annotated:
        return False
    return any(
        isinstance(extra, FieldInfo) and extra.description
        for extra in typing.get_args(annotation)[1:]
    )


def _model(fields: dict[str, Any], names: list[tuple[str, str]], tool: str) -> type[BaseModel]:
    config = ConfigDict(extra="forbid", arbitrary_types_allowed=False)
    try:
        return create_model(f"{tool}_arguments", __config__=config, **fields)
    except (PydanticSchemaGenerationError, PydanticUserError) as error:
        raise ToolDefinitionError(
            f"The tool {tool} has a parameter of a type that pydantic cannot validate "
            f"({_culprit(fields, names)}). Use JSON-like types (str, int, float, bool, "
            "lists, dicts, enums, Literal, pydantic models), or bind that parameter."
        ) from error


def _schema(model: type[BaseModel], names: list[tuple[str, str]], tool: str) -> dict[str, object]:
    try:
        schema = model.model_json_schema(by_alias=True, schema_generator=_SchemaWithoutTitles)
    except PydanticUserError as error:  # e.g. PydanticInvalidForJsonSchema (a Callable)
        fields = {name: (model.model_fields[name].annotation, None) for name, _ in names}
        raise ToolDefinitionError(
            f"The tool {tool} has a parameter of a type with no JSON schema "
            f"({_culprit(fields, names)}), so a model could not fill it in. Use JSON-like "
            "types, or bind that parameter."
        ) from error
    schema.pop("title", None)
    return schema


def _culprit(fields: Mapping[str, Any], names: list[tuple[str, str]]) -> str:
    """Name the first parameter whose type has no schema (to point the user at it)."""
    for field_name, name in names:
        annotation = fields[field_name][0]
        try:
            create_model("probe", value=(annotation, ...)).model_json_schema()
        except Exception:
            return f"{name}: {_type_name(annotation)}"
    return "one of its parameters"


def _type_name(annotation: object) -> str:
    return getattr(annotation, "__qualname__", None) or repr(annotation)


_MAX_PROBLEMS = 10
"""The most problems of a call's arguments that its error names (the rest are counted)."""

_MAX_WHERE_CHARS = 100
"""The most characters of a problem's place (the model's key names) that its error quotes."""


def _problems(error: ValidationError) -> str:
    """The first few problems of the arguments, each where it is and what is wrong, bounded.

    A model's arguments may hold any number of keys of any length (a prompt injection
    writes them): the error names at most ``_MAX_PROBLEMS`` of them and counts the rest,
    and cuts a place longer than ``_MAX_WHERE_CHARS`` characters, so that what the model is
    told back stays short whatever it sent.
    """
    items = error.errors(include_url=False, include_input=False, include_context=False)
    problems = []
    for item in items[:_MAX_PROBLEMS]:
        where = ".".join(str(part) for part in item["loc"]) or "(arguments)"
        if len(where) > _MAX_WHERE_CHARS:
            where = where[: _MAX_WHERE_CHARS - 1] + "…"
        problems.append(f"{where!r}: {item['msg']}")
    more = len(items) - _MAX_PROBLEMS
    if more > 0:
        problems.append(f"and {more:,} more problem{'s' if more > 1 else ''}")
    return "; ".join(problems)
