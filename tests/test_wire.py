"""The data-only wire format: round trips, and hostile frames refused before allocation."""
import json
import socket
import struct

import numpy as np
import pytest
import torch

from autograder.wire import framing
from autograder.wire.codec import DecodeError, Decoder, Encoder


def roundtrip(value):
    enc = Encoder(make_ref=lambda obj: 7)
    wire = json.loads(json.dumps(enc.encode(value)))
    return Decoder(enc.payload(), resolve_ref=lambda e: ("ref", e["ref"])).decode(wire)


def test_tensors_and_containers_round_trip_as_plain_tensors():
    x = torch.randn(2, 3, dtype=torch.float64)
    p = torch.nn.Parameter(torch.ones(4))
    out = roundtrip({"x": x, "rest": (p, [1, 2.5, None, "s", True]), "b": torch.zeros(2, dtype=torch.bfloat16)})
    assert type(out["x"]) is torch.Tensor and torch.equal(out["x"], x)
    assert type(out["rest"][0]) is torch.Tensor and torch.equal(out["rest"][0], torch.ones(4))
    assert out["rest"][1] == [1, 2.5, None, "s", True]
    assert out["b"].dtype == torch.bfloat16


def test_special_values_round_trip():
    out = roundtrip([float("nan"), float("inf"), 2**70, torch.Size([2, 3]), torch.float16, slice(1, None, 2),
                     np.arange(3, dtype=np.int32)])
    assert np.isnan(out[0]) and out[1] == float("inf") and out[2] == 2**70
    assert out[3] == torch.Size([2, 3]) and out[4] is torch.float16 and out[5] == slice(1, None, 2)
    assert out[6].tolist() == [0, 1, 2]


def test_non_data_crosses_as_reference_including_tensor_subclasses():
    class Lying(torch.Tensor):
        pass
    lying = torch.zeros(3).as_subclass(Lying)
    assert roundtrip([object(), lying]) == [("ref", 7), ("ref", 7)]


@pytest.mark.parametrize("wire", [
    {"tensor": {"dtype": "float32", "shape": [1000], "offset": 0, "nbytes": 4}},     # bytes do not match shape
    {"tensor": {"dtype": "object", "shape": [1], "offset": 0, "nbytes": 8}},        # dtype not allowed
    {"tensor": {"dtype": "float32", "shape": [2], "offset": 4, "nbytes": 8}},       # past the payload
    {"pickle": "gASVAAAAAAAAAAB9lC4="},                                              # unknown tag
    {"ndarray": {"dtype": "O", "shape": [1], "offset": 0, "nbytes": 8}},
])
def test_malformed_values_are_refused(wire):
    with pytest.raises(DecodeError):
        Decoder(b"\0" * 8, resolve_ref=lambda e: None).decode(wire)


def test_frame_claiming_ten_gigabytes_is_refused_before_reading():
    a, b = socket.socketpair()
    a.sendall(struct.pack(">4sIQ", framing.MAGIC, 2, 10 * 2**30) + b"{}")
    with pytest.raises(framing.FrameError, match="exceeds"):
        framing.recv_frame(b, deadline=None, max_payload=2**20)


def test_frame_with_pickle_bytes_instead_of_json_is_refused():
    a, b = socket.socketpair()
    import pickle
    blob = pickle.dumps({"ok": True})
    a.sendall(struct.pack(">4sIQ", framing.MAGIC, len(blob), 0) + blob)
    with pytest.raises(framing.FrameError):
        framing.recv_frame(b)


def test_frame_round_trip_and_deadline():
    import time
    a, b = socket.socketpair()
    framing.send_frame(a, {"op": "x"}, b"abc")
    assert framing.recv_frame(b) == ({"op": "x"}, bytearray(b"abc"))
    with pytest.raises(framing.Deadline):
        framing.recv_frame(b, deadline=time.monotonic() + 0.05)


def test_worker_hands_out_only_declared_libraries(tmp_path):
    from autograder.worker.worker import Worker
    worker = Worker(str(tmp_path), {}, "cpu", ["tokenizers"])
    ok, _ = worker.handle({"op": "library", "module": "torch.utils.data"}, b"")
    assert ok["ok"] and "ref" in ok["value"]
    refused, _ = worker.handle({"op": "library", "module": "os"}, b"")
    assert not refused["ok"] and "not declared" in refused["error"]["message"]
