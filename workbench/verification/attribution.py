"""Attribution on the questioned signature: which of its pixels moved the same-writer logit.

The reference is held fixed and the questioned image is explained (captum's
``additional_forward_args`` carry the reference). Two methods:

- ``integrated_gradients``: captum's ``IntegratedGradients`` from a blank-paper baseline (the
  tensor ``images_to_tensor`` gives for an all-white page, i.e. zeros). Completeness holds: the
  attributions sum to ``logit_0(questioned) - logit_0(blank page)`` up to the integration error
  captum reports as the convergence delta. Because ``input - baseline`` is zero on blank paper,
  only ink pixels receive attribution: a stroke the questioned signature lacks is not shown.
- ``gradcam``: captum's ``LayerGradCam`` on the last backbone feature map (``backbone.final``,
  7 x 7 at 224 x 224), upsampled bilinearly to the image size. The backbone runs both branches
  in one batch (references first), so the questioned half of the layer's output is kept.

By default the explained output is the same-writer logit (class 0); ``output="log_odds"``
explains ``logit_0 - logit_1`` instead, the only quantity the score ``softmax[0]`` depends on
(on the shipped weights a blank page moves logit_1 more than logit_0).

The model's parameters, ``requires_grad`` flags and train/eval mode are restored afterwards;
nothing accumulates in ``.grad``. Works on the BatchNorm-folded eval model the Workbench holds,
and from inside ``torch.inference_mode`` (it is switched off locally).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from captum.attr import IntegratedGradients, LayerAttribution, LayerGradCam
from torch import nn

from workbench.models.verifier import images_to_tensor

METHODS = ("integrated_gradients", "gradcam")
OUTPUTS = ("same_writer_logit", "log_odds")
SIGNS = ("absolute", "positive", "negative")
SAME_WRITER = 0  # logit index of the same-writer class


@dataclass(frozen=True)
class RawAttribution:
    """An attribution before it is scaled for display.

    Attributes:
        values: ``float32`` (H, W) signed map; for Integrated Gradients summed over the single
            input channel, in logit units (the sum is the output's change), for Grad-CAM the
            upsampled ReLU-ed class activation map (>= 0, arbitrary units).
        output: the explained output for (reference, questioned): the same-writer logit
            (class 0) or the log-odds ``logit_0 - logit_1`` (``softmax[0] = sigmoid(log-odds)``).
        baseline_output: the same with a blank questioned page (IG only, else None).
        delta: captum's convergence delta, ``sum(values) - (output - baseline_output)`` (IG only).
    """

    values: np.ndarray
    output: float
    baseline_output: float | None = None
    delta: float | None = None


class _QuestionedForward(nn.Module):
    """``f(questioned, reference) = model(reference, questioned)``: captum explains the first input.

    Returns (B, 2) logits, or (B, 1) log-odds ``logit_0 - logit_1`` with ``log_odds=True``;
    either way the explained output is column 0.
    """

    def __init__(self, model: nn.Module, log_odds: bool = False) -> None:
        super().__init__()
        self.model = model
        self.log_odds = log_odds

    def forward(self, questioned: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        if reference.shape[0] != questioned.shape[0]:  # captum may expand only one of them
            reference = reference.expand(questioned.shape[0], *reference.shape[1:])
        logits = self.model(reference, questioned)
        return (logits[:, :1] - logits[:, 1:2]) if self.log_odds else logits


@contextlib.contextmanager
def _gradients_on_input_only(model: nn.Module) -> Iterator[None]:
    """Eval mode, no parameter gradients, autograd on; everything restored on exit."""
    flags = [(p, p.requires_grad) for p in model.parameters()]
    modes = [(m, m.training) for m in model.modules()]
    try:
        model.eval()
        for p, _ in flags:
            p.requires_grad_(False)
        with torch.inference_mode(False), torch.enable_grad():
            yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
        for m, mode in modes:
            m.training = mode


def _check_image(name: str, image: np.ndarray, shape: tuple[int, int] | None) -> np.ndarray:
    array = np.asarray(image)
    if array.ndim != 2 or array.dtype != np.uint8:
        raise ValueError(
            f"The {name} image must be a normalized uint8 (H, W) array "
            "(Workbench.normalize(...).image), "
            f"not {array.dtype} {array.shape}."
        )
    if shape is not None and array.shape != shape:
        raise ValueError(
            f"The {name} image is {array.shape[0]}x{array.shape[1]}; the reference is "
            f"{shape[0]}x{shape[1]}: normalize both with the same Workbench."
        )
    return array


def normalize_attribution(
    values: np.ndarray, *, sign: str = "absolute", percentile: float = 99.0
) -> np.ndarray:
    """Signed attribution -> ``float32`` map in [0, 1] for display.

    Args:
        values: (H, W) signed attribution.
        sign: ``absolute`` (|a|), ``positive`` (evidence for the same writer) or ``negative``
            (evidence against it).
        percentile: the map is divided by this percentile of its non-zero values and clipped
            at 1, so that a few extreme pixels do not wash out the rest (100 = the maximum).

    Returns:
        ``float32`` (H, W) in [0, 1]; all zeros when nothing is attributed.
    """
    if sign not in SIGNS:
        raise ValueError(f"Unknown sign {sign!r}: choose one of {', '.join(SIGNS)}.")
    if not 0.0 < percentile <= 100.0:
        raise ValueError(f"The percentile must lie in (0, 100], not {percentile}.")
    values = np.nan_to_num(np.asarray(values, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    shown = {
        "absolute": np.abs(values),
        "positive": np.maximum(values, 0),
        "negative": np.maximum(-values, 0),
    }[sign]
    nonzero = shown[shown > 0]
    if nonzero.size == 0:
        return np.zeros_like(shown, dtype=np.float32)
    scale = float(np.percentile(nonzero, percentile))
    return np.clip(shown / max(scale, 1e-30), 0.0, 1.0).astype(np.float32)


class QuestionedAttribution:
    """Attribution of the same-writer logit to the questioned signature's pixels.

    Args:
        model: a ``SiameseVerifier`` (plain or BatchNorm-folded, e.g. ``Workbench.model``).
        method: ``integrated_gradients`` or ``gradcam``.
        n_steps: Integrated Gradients' path steps.
        internal_batch_size: pairs per forward/backward pass of Integrated Gradients.
        output: ``same_writer_logit`` (class 0's logit) or ``log_odds`` (``logit_0 - logit_1``,
            the only quantity the score depends on: ``score = sigmoid(log-odds)``).
        sign: which attributions ``attribute`` shows, see ``normalize_attribution``.
        percentile: display scaling, see ``normalize_attribution``.
        layer: Grad-CAM's layer; default ``model.backbone.final`` (it sees 2B images: the
            references then the questioned).

    Example::

        explainer = QuestionedAttribution(workbench.model)
        heat = explainer.attribute(workbench.normalize(ref).image, workbench.normalize(query).image)
        picture = overlay_attribution(workbench.normalize(query).image, heat)
    """

    def __init__(
        self,
        model: nn.Module,
        method: str = "integrated_gradients",
        *,
        n_steps: int = 32,
        internal_batch_size: int = 16,
        output: str = "same_writer_logit",
        sign: str = "absolute",
        percentile: float = 99.0,
        layer: nn.Module | None = None,
    ) -> None:
        if method not in METHODS:
            raise ValueError(
                f"Unknown attribution method {method!r}: choose one of {', '.join(METHODS)}."
            )
        if n_steps < 2 or internal_batch_size < 1:
            raise ValueError(
                f"n_steps must be >= 2 and internal_batch_size >= 1 "
                f"(got {n_steps}, {internal_batch_size})."
            )
        if output not in OUTPUTS:
            raise ValueError(f"Unknown output {output!r}: choose one of {', '.join(OUTPUTS)}.")
        normalize_attribution(np.zeros((1, 1)), sign=sign, percentile=percentile)  # validates both
        self.model = model
        self.method = method
        self.output = output
        self.n_steps = n_steps
        self.internal_batch_size = internal_batch_size
        self.sign = sign
        self.percentile = percentile
        if method == "gradcam" and layer is None:
            backbone = getattr(model, "backbone", None)
            if backbone is None or not hasattr(backbone, "final"):
                raise ValueError(
                    "Grad-CAM needs a layer: this model has no backbone.final; pass layer=..."
                )
            layer = backbone.final
        self.layer = layer
        self._forward = _QuestionedForward(model, log_odds=output == "log_odds")
        self._device = next(
            model.parameters(), torch.empty(0)
        ).device  # CPU, or the Workbench's GPU

    def attribute(self, reference: np.ndarray, questioned: np.ndarray) -> np.ndarray:
        """Where the questioned signature drove the same-writer logit (or the log-odds).

        Args:
            reference, questioned: normalized ``uint8`` (H, W) images, ink dark on white, of the
                size the model was built for (``Workbench.normalize(...).image``).

        Returns:
            ``float32`` (H, W) map in [0, 1] (1 = most attributed).

        Raises:
            ValueError: images that are not normalized uint8 (H, W) arrays of one size.
        """
        raw = self.raw_attribution(reference, questioned)
        return normalize_attribution(raw.values, sign=self.sign, percentile=self.percentile)

    def raw_attribution(self, reference: np.ndarray, questioned: np.ndarray) -> RawAttribution:
        """The signed attribution and the output it explains, before display scaling."""
        reference = _check_image("reference", reference, None)
        questioned = _check_image("questioned", questioned, reference.shape)
        with _gradients_on_input_only(self.model):
            ref = images_to_tensor(reference).to(self._device)
            query = images_to_tensor(questioned).to(self._device).requires_grad_(True)
            with torch.no_grad():
                output = float(self._forward(query, ref)[0, SAME_WRITER])
            if self.method == "integrated_gradients":
                return self._integrated_gradients(ref, query, output)
            return self._gradcam(ref, query, output)

    def _integrated_gradients(
        self, ref: torch.Tensor, query: torch.Tensor, output: float
    ) -> RawAttribution:
        baseline = images_to_tensor(np.full(query.shape[2:], 255, dtype=np.uint8)).to(self._device)
        with torch.no_grad():
            baseline_output = float(self._forward(baseline, ref)[0, SAME_WRITER])
        attributions, delta = IntegratedGradients(self._forward).attribute(
            query,
            baselines=baseline,
            target=SAME_WRITER,
            additional_forward_args=(ref,),
            n_steps=self.n_steps,
            internal_batch_size=self.internal_batch_size,
            return_convergence_delta=True,
        )
        values = attributions.detach()[0].sum(0).float().cpu().numpy()
        return RawAttribution(
            values=values, output=output, baseline_output=baseline_output, delta=float(delta[0])
        )

    def _gradcam(self, ref: torch.Tensor, query: torch.Tensor, output: float) -> RawAttribution:
        cam = LayerGradCam(self._forward, self.layer).attribute(
            query,
            target=SAME_WRITER,
            additional_forward_args=(ref,),
            relu_attributions=True,
        )
        if cam.shape[0] != 2 * query.shape[0]:
            raise ValueError(
                f"Grad-CAM's layer returned a batch of {cam.shape[0]}; expected both branches "
                f"({2 * query.shape[0]}): choose a backbone layer that sees the references and "
                "the questioned."
            )
        questioned_half = cam[query.shape[0] :].detach().float().cpu()
        upsampled = LayerAttribution.interpolate(
            questioned_half, tuple(query.shape[2:]), interpolate_mode="bilinear"
        )
        return RawAttribution(values=upsampled[0, 0].numpy().astype(np.float32), output=output)


def overlay_attribution(
    image: np.ndarray, attribution: np.ndarray, *, strength: float = 0.8, blur_sigma: float = 1.5
) -> np.ndarray:
    """Colour a normalized signature by an attribution map, leaving unattributed paper white.

    Unlike ``overlays.overlay_heatmap`` (a uniform blend that rescales min-max), the blend
    weight follows the map itself, so IG's zero attribution on blank paper stays white. IG
    lights single stroke pixels, hard to see on 1-2 px strokes: for display only, the map is
    blurred (Gaussian, ``blur_sigma`` px; 0 = none) and rescaled to peak at 1.

    Args:
        image: ``uint8`` (H, W) normalized signature.
        attribution: (H, W) float map in [0, 1], e.g. ``QuestionedAttribution.attribute``.
        strength: blend weight where the map is 1.
        blur_sigma: display blur in pixels.

    Returns:
        ``uint8`` (H, W, 3) RGB.
    """
    image = np.asarray(image)
    heat = np.clip(np.nan_to_num(np.asarray(attribution, dtype=np.float32)), 0.0, 1.0)
    if image.ndim != 2 or heat.shape != image.shape:
        raise ValueError(f"The attribution {heat.shape} must match the (H, W) image {image.shape}.")
    if blur_sigma > 0 and heat.max() > 0:
        heat = cv2.GaussianBlur(heat, (0, 0), blur_sigma)
        heat = np.clip(heat / heat.max(), 0.0, 1.0)
    colour = cv2.applyColorMap((heat * 255).astype(np.uint8), cv2.COLORMAP_INFERNO)[
        :, :, ::-1
    ].astype(np.float32)
    base = np.repeat(image[:, :, None], 3, axis=2).astype(np.float32)
    weight = strength * heat[:, :, None]
    return np.clip(base * (1 - weight) + colour * weight, 0, 255).astype(np.uint8)
