"""The Figma node tree the plugin builds from (generate_design's result)."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Color(BaseModel):
    model_config = ConfigDict(extra="forbid")

    r: float = Field(ge=0, le=1)
    g: float = Field(ge=0, le=1)
    b: float = Field(ge=0, le=1)


class SolidFill(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["SOLID"] = "SOLID"
    color: Color
    opacity: float | None = Field(default=None, ge=0, le=1)


class Layout(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Literal["HORIZONTAL", "VERTICAL", "NONE"]
    padding: float | None = Field(default=None, ge=0, le=1000)
    gap: float | None = Field(default=None, ge=0, le=1000)
    align: Literal["MIN", "CENTER", "MAX", "SPACE_BETWEEN"] | None = None


class FigmaNode(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["FRAME", "TEXT", "RECTANGLE", "INSTANCE"]
    name: str = Field(min_length=1, max_length=200)
    width: float | None = Field(default=None, gt=0, le=100_000)
    height: float | None = Field(default=None, gt=0, le=100_000)
    fills: list[SolidFill] | None = None
    layout: Layout | None = None
    characters: str | None = Field(default=None, max_length=10_000)
    fontSize: float | None = Field(default=None, gt=0, le=1000)
    fontWeight: int | None = Field(default=None, ge=100, le=900)
    componentKey: str | None = Field(default=None, min_length=1, max_length=200)
    properties: dict[str, str | bool] | None = None  # INSTANCE component properties
    cornerRadius: float | None = Field(default=None, ge=0, le=10_000)
    children: list[FigmaNode] | None = None

    @model_validator(mode="after")
    def _fields_fit_the_type(self) -> Self:
        if self.type == "TEXT" and not self.characters:
            raise ValueError("a TEXT node needs characters")
        if self.type == "INSTANCE" and not self.componentKey:
            raise ValueError("an INSTANCE node needs a componentKey")
        if self.children and self.type != "FRAME":
            raise ValueError(f"only FRAME nodes have children, not {self.type}")
        return self

    def count(self) -> int:
        return 1 + sum(child.count() for child in self.children or [])
