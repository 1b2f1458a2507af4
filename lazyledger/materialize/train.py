"""The provider side of DNN jobs: train a torch model that matches a :class:`ModelSpec` and
export its weights blob. Results may differ run to run (GPU reductions, thread counts); the
ledger only ever checks the blob, with :func:`lazyledger.materialize.dnn.check_claim`.

torch is optional: it is imported inside the functions, never at module import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import numpy.typing as npt

from lazyledger.materialize.dnn import (
    AnySpec,
    InvalidModel,
    ModelSpec,
    decode_spec,
    encode_weights,
    load_dataset,
)

if TYPE_CHECKING:
    import torch

    from lazyledger.crypto import Keypair
    from lazyledger.model import Transaction

__all__ = [
    "build_torch_model",
    "claim_job",
    "export_weights",
    "pick_device",
    "torch_predict",
    "train",
]


def pick_device(device: str | None = None) -> str:
    """``device`` if given, else ``"cuda"`` when torch sees a GPU, else ``"cpu"``."""
    import torch

    if device is not None:
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def build_torch_model(spec: ModelSpec) -> torch.nn.Module:
    """A float torch model with exactly the integer kernel's layers, shapes and parameter names.

    The model takes the dataset's integers as floats and scales them by ``2**-input_shift``.
    """
    import torch
    from torch import nn

    class SpecModel(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.scale = 2.0**-spec.input_shift  # exact power of two
            self.layers: list[nn.Module] = []
            if spec.arch == "mlp":
                widths = [spec.input_shape[0], *spec.hidden, spec.n_classes]
                for i in range(len(widths) - 1):
                    layer = nn.Linear(widths[i], widths[i + 1])
                    setattr(self, f"fc{i}", layer)
                    self.layers.append(layer)
            else:
                c, h, w = spec.input_shape
                for i, oc in enumerate(spec.hidden):
                    conv = nn.Conv2d(c, oc, kernel_size=3, stride=1, padding=1)
                    setattr(self, f"conv{i}", conv)
                    self.layers.append(conv)
                    c = oc
                self.fc = nn.Linear(c * h * w, spec.n_classes)
                self.layers.append(self.fc)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = x.reshape(x.shape[0], *spec.input_shape) * self.scale
            for layer in self.layers[:-1]:
                x = torch.relu(layer(x))
            out: torch.Tensor = self.layers[-1](x.flatten(1))
            return out

    model = SpecModel()
    names = [n for n, _ in model.named_parameters()]
    want = [n for n, _ in spec.param_shapes()]
    assert names == want, (names, want)
    return model


def export_weights(spec: ModelSpec, model: torch.nn.Module) -> bytes:
    """The weights blob of ``model`` (built by :func:`build_torch_model` for ``spec``)."""
    params = dict(model.named_parameters())
    tensors = [
        params[name].detach().to("cpu", dtype=_float32()).numpy() for name, _ in spec.param_shapes()
    ]
    return encode_weights(spec, tensors)


def _float32() -> Any:
    import torch

    return torch.float32


def train(
    spec: AnySpec,
    train_blob: bytes,
    *,
    epochs: int,
    seed: int,
    device: str | None = None,
    lr: float = 1e-2,
    batch_size: int = 64,
) -> bytes:
    """Train a model for ``spec`` on a dataset blob with Adam and cross-entropy; return its blob.

    Initialisation and shuffling are seeded on the CPU, so runs start alike everywhere; the
    float arithmetic of training itself may still differ between machines and thread counts.
    A rule-2 spec is trained as a float model and quantised into an int8 blob
    (:func:`lazyledger.materialize.qnet.export.train_net`).
    """
    import torch
    from torch import nn

    if not isinstance(spec, ModelSpec):
        from lazyledger.materialize.qnet.export import train_net

        return train_net(
            spec, train_blob, epochs=epochs, seed=seed, device=device, lr=lr, batch_size=batch_size
        )

    if epochs < 0 or batch_size < 1:
        raise InvalidModel(f"bad training settings: epochs={epochs}, batch_size={batch_size}")
    x, y = load_dataset(spec, train_blob)
    dev = torch.device(pick_device(device))
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = build_torch_model(spec)  # initialised on the CPU from the seed
    model.to(dev)
    xt = torch.from_numpy(x.astype(np.float32)).to(dev)
    yt = torch.from_numpy(y).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    n = xt.shape[0]
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(n, generator=gen).to(dev)
        for start in range(0, n, batch_size):
            idx = perm[start : start + batch_size]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
    model.eval()
    return export_weights(spec, model)


def torch_predict(
    model: torch.nn.Module, x: npt.NDArray[np.int64], device: str = "cpu"
) -> npt.NDArray[np.int64]:
    """Float32 class ids from a torch model (for comparison and benchmarks, never for verdicts)."""
    import torch

    model.to(device).eval()
    with torch.inference_mode():
        logits = model(torch.from_numpy(x.astype(np.float32)).to(device))
    out: npt.NDArray[np.int64] = logits.argmax(dim=1).to("cpu").numpy().astype(np.int64)
    return out


class JobSource(Protocol):
    """Where a provider reads a job and stores its weights (a :class:`lazyledger.Ledger`)."""

    def job_transaction(self, job: bytes) -> Transaction: ...

    def get_blob(self, key: bytes) -> bytes: ...

    def put_blob(self, data: bytes, kind: str | None = None) -> bytes: ...


def claim_job(
    ledger: JobSource,
    job: bytes,
    kp: Keypair,
    *,
    nonce: int,
    epochs: int = 30,
    seed: int = 0,
    device: str | None = None,
    chain_id: str = "",
) -> Transaction:
    """The provider's whole round: read the job ``job`` (its account) from ``ledger``, train its
    model on its training blob, store the weights blob, and return a signed claim for it. The
    ledger will judge the claim from the blob alone, whatever this training run reported."""
    from lazyledger.ops import DnnJob
    from lazyledger.transactions import dnn_claim

    call = ledger.job_transaction(job).call
    if not isinstance(call, DnnJob):
        raise InvalidModel(f"{job.hex()[:16]} is not a job account")
    spec = decode_spec(ledger.get_blob(call.spec))
    blob = train(spec, ledger.get_blob(call.train), epochs=epochs, seed=seed, device=device)
    weights = ledger.put_blob(blob, kind="weights:" + call.spec.hex())
    return dnn_claim(kp, nonce=nonce, job=job, weights=weights, chain_id=chain_id)
