from . import pool_pb2 as _pool_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class QueryTicket(_message.Message):
    __slots__ = ("pool_id", "sql", "params", "batch_size")
    POOL_ID_FIELD_NUMBER: _ClassVar[int]
    SQL_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    pool_id: str
    sql: str
    params: _containers.RepeatedCompositeFieldContainer[_pool_pb2.Param]
    batch_size: int
    def __init__(self, pool_id: _Optional[str] = ..., sql: _Optional[str] = ..., params: _Optional[_Iterable[_Union[_pool_pb2.Param, _Mapping]]] = ..., batch_size: _Optional[int] = ...) -> None: ...
