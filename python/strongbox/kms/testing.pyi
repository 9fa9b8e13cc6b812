from typing import Optional

from . import _Facility

class TestingKeyManagementFacility(_Facility):
    storage_dir: Optional[str]
    def __init__(self, storage_dir: Optional[str] = ...) -> None: ...
    def generate(self) -> bytes: ...
