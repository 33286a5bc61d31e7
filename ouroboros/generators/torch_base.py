"""Shared machinery of the PyTorch generators: encoding, device, seeding, batching and persistence.

A subclass says which modules it has (`_build`), how one epoch trains them (`_train_epoch`) and how
to draw encoded rows (`_generate`); this class does the rest. Every random draw of a fit or a sample
comes from torch's global generator inside `torch.random.fork_rng`, seeded from the generator's seed,
so the caller's RNG state is untouched and the same seed, data and device give the same numbers.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import polars as pl
import torch

from ouroboros.generators.base import Conditions, Generator, GeneratorError, ProgressCallback, rejection_sample
from ouroboros.generators.encoding import TableEncoder, _level_codes
from ouroboros.generators.groups import Groups

ENCODER_FILE = "encoder.json"
MODEL_FILE = "model.pt"

_DEVICE = re.compile(r"^(cpu|cuda(:\d+)?)$")


class TorchGenerator(Generator):
    """Base of the GAN, VAE and diffusion generators."""

    CONTINUOUS: ClassVar[str] = "mixture"  # how the encoder treats continuous columns
    COMMON_PARAMS: ClassVar[dict[str, tuple[type, Any]]] = {
        "epochs": (int, 300),
        "batch_size": (int, 500),
        "max_modes": (int, 10),  # mixture components per continuous column
        "max_levels": (int, 64),  # one-hot width cap for a categorical; rarer values share an "other" level
        "discrete_limit": (int, 32),  # numeric columns with at most this many distinct values are categorical
        "fit_rows": (int, 5000),  # rows the mixtures are fitted on
        # quantile mode: point masses (a value far more frequent than its neighbours, e.g. the zeros of an
        # amount) get their own level in the column's group; False: the plain rank encoding (encoding.py)
        "spikes": (bool, True),
        "dp": (dict, None),  # differential privacy: {epsilon, delta, max_grad_norm, public} (ouroboros.privacy)
        # matrix products in bfloat16 ("bf16"), float32 ("fp32"), or "auto": bf16 where the device computes it
        # natively (a CPU with AVX512-BF16 or AMX, a GPU with bf16 support), else fp32. Losses, sampling
        # arithmetic and optimizer state stay float32 either way.
        "precision": (str, "auto"),
    }
    # dp hook: (module, optimizer) attributes that see real rows and are trained with DP-SGD when params.dp is set
    DP_MODULES: ClassVar[tuple[tuple[str, str], ...]] = (("model", "_opt"),)
    # modules named here are saved and restored; `_build` must create them
    MODULES: ClassVar[tuple[str, ...]] = ()
    TRANSIENT: ClassVar[tuple[str, ...]] = ()  # attributes set for training only, dropped after fit

    def _validate_params(self) -> None:
        p = self.params
        if not _DEVICE.match(str(self.device)):
            raise GeneratorError(f"{self.family}: device must be 'cpu', 'cuda' or 'cuda:N', got {self.device!r}")
        for name, lo in (("epochs", 1), ("batch_size", 2), ("max_modes", 1), ("max_levels", 2),
                         ("discrete_limit", 0), ("fit_rows", 10)):
            if p[name] < lo:
                raise GeneratorError(f"{self.family}: parameter {name} must be at least {lo}, got {p[name]}")
        if p["precision"] not in ("auto", "bf16", "fp32"):
            raise GeneratorError(f"{self.family}: parameter precision must be 'auto', 'bf16' or 'fp32', got {p['precision']!r}")
        for name, (kind, _) in self.PARAMS.items():
            if kind is float and p[name] is not None and not np.isfinite(p[name]):
                raise GeneratorError(f"{self.family}: parameter {name} must be finite, got {p[name]}")
        self._validate_model_params()

    def _validate_model_params(self) -> None:
        """Subclasses check their own ranges here."""

    def _positive(self, *names: str) -> None:
        for name in names:
            if self.params[name] <= 0:
                raise GeneratorError(f"{self.family}: parameter {name} must be positive, got {self.params[name]}")

    def _dims(self, name: str) -> tuple[int, ...]:
        """A layer-width parameter written as '256,256'."""
        text = self.params[name]
        try:
            dims = tuple(int(x) for x in text.split(",") if x.strip())
        except ValueError:
            dims = ()
        if not dims or min(dims) < 1:
            raise GeneratorError(
                f"{self.family}: parameter {name} must be comma-separated positive widths like '256,256', got {text!r}"
            )
        return dims

    # -- device and RNG ---------------------------------------------------------------------------

    def _torch_device(self) -> torch.device:
        device = torch.device(self.device)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise GeneratorError(f"{self.family}: device {self.device!r} requested but no CUDA GPU is available; use 'cpu'")
        return device

    @contextmanager
    def _seeded(self, seed: int):
        device = self._torch_device()
        devices = [device.index or 0] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            yield device

    # -- Generator hooks --------------------------------------------------------------------------

    def _fit(self, df: pl.DataFrame, callback: ProgressCallback | None) -> None:
        p = self.params
        self._encoder = TableEncoder(
            continuous=self.CONTINUOUS, max_modes=p["max_modes"], max_levels=p["max_levels"],
            discrete_limit=p["discrete_limit"], fit_rows=p["fit_rows"], spikes=p["spikes"],
        )
        self._dp = None
        if p["dp"] is None:
            self._encoder.fit(df, self.schema, seed=self.seed)
            num, codes = self._encoder.transform(df, seed=self.seed)
        else:  # dp hook: private encoder statistics, Poisson batches and DP optimizers (ouroboros.privacy)
            from ouroboros.privacy.fit import PrivateFit

            self._dp = PrivateFit(p["dp"], self.family, self.schema, df.height, self._batch_size(df.height),
                                  p["epochs"], p["discrete_limit"])
            self.schema, num, codes = self._dp.encode(self._encoder, df, self.schema, self.seed)
        with self._seeded(self.seed) as device:
            self._setup(device)
            num_t = torch.from_numpy(num).to(device)
            codes_t = torch.from_numpy(codes).to(device)
            self._prepare(num_t, codes_t)
            if self._dp is not None:
                self._dp.attach(self)
            for m in self.MODULES:
                getattr(self, m).train()
            n = len(num_t)
            batch = self._batch_size(n)
            for epoch in range(p["epochs"]):
                if self._dp is not None:
                    losses = self._dp.train_epoch(self, num_t, codes_t, batch)
                else:
                    losses = self._train_epoch(num_t, codes_t, batch)
                if callback is not None:
                    callback(epoch, {k: float(v) for k, v in losses.items()})
            for m in self.MODULES:
                getattr(self, m).eval()
            with torch.no_grad():
                self._finish(num_t, codes_t)
            for name in self.TRANSIENT:  # training-only tensors: free them, a fitted generator may live long
                self.__dict__.pop(name, None)
        if self._dp is not None:
            self.privacy = self._dp.finish().to_dict()
            self._dp = None

    def _batch_size(self, n: int) -> int:
        """Rows per optimizer step for a table of `n` rows."""
        return min(self.params["batch_size"], n)

    def _batches(self, n: int, batch: int):
        """Index batches of one epoch: shuffled, or Poisson-sampled under DP (what its accountant assumes)."""
        if getattr(self, "_dp", None) is not None:
            return self._dp.batches(self._device)
        return batches(n, batch, self._device)

    # the family's `_generate` honours `self._fixed` ({group: level}: every row takes that level); False: conditions
    # are met by rejection sampling only
    FIXES_GROUPS: ClassVar[bool] = False

    def _sample_conditioned(self, n: int, seed: int, conditions: Conditions) -> pl.DataFrame:
        """Conditions on categorical groups are fixed in the model where the family can (`FIXES_GROUPS`); the
        rest (a rare value behind the "other" level, an integer with a continuous encoding, a family that cannot)
        are met by rejection sampling on top."""
        fixed, rest = {}, {}
        groups = {g.column: j for j, g in enumerate(self._encoder.groups) if g.role == "levels"}
        for name, value in conditions.items():
            i = next(i for i, c in enumerate(self._encoder.columns) if c.name == name)
            c = self._encoder.columns[i]
            level = int(_level_codes(c, pl.Series(name, [value]))[0]) if i in groups else -1
            exact = level >= 0 and level != c.other and c.levels[level] is not None and (
                str(c.levels[level]) == str(value) if isinstance(value, str) else c.levels[level] == value)
            if self.FIXES_GROUPS and exact:
                fixed[groups[i]] = level
            else:
                rest[name] = value

        def draw(rows: int, s: int) -> pl.DataFrame:
            self._fixed = fixed
            try:
                return self._sample(rows, s)
            finally:
                self._fixed = {}

        if not rest:
            return draw(n, seed)
        return rejection_sample(self, draw, n, seed, rest)

    def _sample(self, n: int, seed: int) -> pl.DataFrame:
        nums, codes = [], []
        with self._seeded(seed) as device, torch.no_grad():
            self._setup(device, build=False)
            for start in range(0, n, self.SAMPLE_BATCH):
                num, code = self._generate(min(self.SAMPLE_BATCH, n - start))
                nums.append(num.float().cpu().numpy())
                codes.append(code.cpu().numpy())
        return self._encoder.decode(np.concatenate(nums), np.concatenate(codes), seed=seed)

    SAMPLE_BATCH: ClassVar[int] = 8192

    def _setup(self, device: torch.device, build: bool = True) -> None:
        """Layout tensors on `device` and, when fitting, fresh modules."""
        enc = self._encoder
        self._device = device
        self._groups = Groups(enc.group_sizes, device)
        self._n_num = enc.n_scalars
        precision = self.params["precision"]
        # DP-SGD stays float32: its clipping bound must hold exactly for the accountant's guarantee
        self._bf16 = self.params["dp"] is None and (precision == "bf16" or (precision == "auto" and native_bf16(device)))
        if build:
            self._build(device)
        else:
            for m in self.MODULES:
                getattr(self, m).to(device).eval()

    def _state(self, path: Path) -> None:
        self._encoder.save(path / ENCODER_FILE)
        state = {m: {k: v.detach().cpu() for k, v in getattr(self, m).state_dict().items()} for m in self.MODULES}
        state["extra"] = {k: v.detach().cpu() for k, v in self._extra_state().items()}
        torch.save(state, path / MODEL_FILE)

    def _restore(self, path: Path) -> None:
        self._encoder = TableEncoder.load(path / ENCODER_FILE)
        state = torch.load(path / MODEL_FILE, map_location="cpu", weights_only=True)
        with self._seeded(0) as device:  # module construction draws initial weights; keep the caller's RNG as is
            self._setup(device)
        for m in self.MODULES:
            getattr(self, m).load_state_dict(state[m])
            getattr(self, m).eval()
        self._load_extra_state({k: v.to(device) for k, v in state.get("extra", {}).items()})

    def _autocast(self):
        """Context for the modules' forward passes: bfloat16 matrix products when `precision` chose them."""
        return torch.autocast(self._device.type, dtype=torch.bfloat16, enabled=self._bf16)

    # -- for subclasses ---------------------------------------------------------------------------

    def _build(self, device: torch.device) -> None:
        raise NotImplementedError

    def _prepare(self, num: torch.Tensor, codes: torch.Tensor) -> None:
        """Precompute anything training needs from the encoded data (e.g. sampling tables)."""

    def _finish(self, num: torch.Tensor, codes: torch.Tensor) -> None:
        """After training, in eval mode and without gradients: anything sampling needs from the fitted modules."""

    # The one place optimizers are made and stepped, so a wrapper (e.g. differentially private SGD) can
    # take over both for every family.
    def _optimizer(self, params, lr: float, weight_decay: float = 0.0, betas: tuple[float, float] = (0.9, 0.999),
                   decoupled: bool = False, fused: bool = False) -> torch.optim.Optimizer:
        """Adam, or AdamW (`decoupled` weight decay). `fused` updates every parameter in one kernel (a family
        asks for it where it measured faster); under dp the optimizer is wrapped, so it stays the foreach one."""
        kind = torch.optim.AdamW if decoupled else torch.optim.Adam
        how = {"fused": True} if fused and self.params["dp"] is None else {"foreach": True}
        return kind(params, lr=lr, betas=betas, weight_decay=weight_decay, **how)

    def _train_step(self, optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def _train_epoch(self, num: torch.Tensor, codes: torch.Tensor, batch: int) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def _generate(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def _extra_state(self) -> dict[str, torch.Tensor]:
        """Tensors other than module weights that sampling needs (saved with the model)."""
        return {}

    def _load_extra_state(self, state: dict[str, torch.Tensor]) -> None:
        """Inverse of `_extra_state`."""


def native_bf16(device: torch.device) -> bool:
    """Does `device` multiply bfloat16 matrices in hardware? (Emulated bf16 is slower than float32.)"""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    try:  # Linux reports the instruction sets; elsewhere stay with float32
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def mlp(dims: list[int], act: type[torch.nn.Module] = torch.nn.ReLU) -> torch.nn.Sequential:
    """Linear layers of widths dims[0] -> ... -> dims[-1] with `act` between them (none after the last)."""
    layers: list[torch.nn.Module] = []
    for i in range(len(dims) - 1):
        layers.append(torch.nn.Linear(dims[i], dims[i + 1]))
        if i < len(dims) - 2:
            layers.append(act())
    return torch.nn.Sequential(*layers)


def batches(n: int, batch: int, device: torch.device):
    """Shuffled index batches covering every row exactly once per epoch.

    ceil(n / batch) steps, the permutation cut into near-equal parts (sizes differ by at most one), so
    no row is left out and no step is a tiny remainder batch whose gradient is mostly noise.
    """
    perm = torch.randperm(n, device=device)
    steps = max(1, -(-n // batch))
    yield from torch.tensor_split(perm, steps)


def steps_per_epoch(n: int, batch: int) -> int:
    """Optimizer steps `batches` makes over `n` rows (for schedules planned before training)."""
    return max(1, -(-n // batch))
