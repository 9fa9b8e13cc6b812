from typing import Optional, Union

from . import Identity as _Identity, Recipient as _Recipient

class Recipient(_Recipient):
    @classmethod
    def from_str(cls, s: str) -> "Recipient": ...

class Identity(_Identity):
    @classmethod
    def from_buffer(cls, buffer: Union[bytes, bytearray, memoryview],
                    passphrase: Optional[Union[str, bytes]] = ...) -> "Identity": ...
    def to_public(self) -> Recipient: ...
