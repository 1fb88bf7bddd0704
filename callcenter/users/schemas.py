"""What the users API reads and returns. Passwords come in as SecretStr and never go out."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from callcenter.models import Role


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    display_name: str
    role: Role
    active: bool
    queue_member_name: str | None = Field(
        description="The queue member name AMI reports for this operator, e.g. 'Operator Andi'."
    )
    queue_member_interface: str | None = Field(
        default=None, description="The operator's phone as a queue member, e.g. 'PJSIP/op1'."
    )
    created_at: datetime


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=64)
    password: SecretStr
    role: Role
    display_name: str = Field(default="", max_length=128)
    queue_member_name: str | None = Field(default=None, max_length=128)
    queue_member_interface: str | None = Field(default=None, max_length=128)


class UserUpdate(BaseModel):
    """Only the fields given change; ``active: false`` disables the user (tokens stop working)."""

    model_config = ConfigDict(extra="forbid")

    role: Role | None = None
    active: bool | None = None
    display_name: str | None = Field(default=None, max_length=128)
    queue_member_name: str | None = Field(default=None, max_length=128)
    queue_member_interface: str | None = Field(default=None, max_length=128)
