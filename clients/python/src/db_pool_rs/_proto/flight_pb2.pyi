from . import pool_pb2 as _pool_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class InsertMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    INSERT_MODE_APPEND_UNSPECIFIED: _ClassVar[InsertMode]
    INSERT_MODE_CREATE: _ClassVar[InsertMode]
    INSERT_MODE_REPLACE: _ClassVar[InsertMode]
INSERT_MODE_APPEND_UNSPECIFIED: InsertMode
INSERT_MODE_CREATE: InsertMode
INSERT_MODE_REPLACE: InsertMode

class QueryTicket(_message.Message):
    __slots__ = ("pool_id", "sql", "params", "batch_size", "transaction_id", "string_view")
    POOL_ID_FIELD_NUMBER: _ClassVar[int]
    SQL_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    TRANSACTION_ID_FIELD_NUMBER: _ClassVar[int]
    STRING_VIEW_FIELD_NUMBER: _ClassVar[int]
    pool_id: str
    sql: str
    params: _containers.RepeatedCompositeFieldContainer[_pool_pb2.Param]
    batch_size: int
    transaction_id: str
    string_view: bool
    def __init__(self, pool_id: _Optional[str] = ..., sql: _Optional[str] = ..., params: _Optional[_Iterable[_Union[_pool_pb2.Param, _Mapping]]] = ..., batch_size: _Optional[int] = ..., transaction_id: _Optional[str] = ..., string_view: bool = ...) -> None: ...

class BulkInsertCommand(_message.Message):
    __slots__ = ("pool_id", "table", "mode")
    POOL_ID_FIELD_NUMBER: _ClassVar[int]
    TABLE_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    pool_id: str
    table: str
    mode: InsertMode
    def __init__(self, pool_id: _Optional[str] = ..., table: _Optional[str] = ..., mode: _Optional[_Union[InsertMode, str]] = ...) -> None: ...

class BulkInsertResult(_message.Message):
    __slots__ = ("rows_inserted",)
    ROWS_INSERTED_FIELD_NUMBER: _ClassVar[int]
    rows_inserted: int
    def __init__(self, rows_inserted: _Optional[int] = ...) -> None: ...
