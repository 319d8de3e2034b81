"""How numbers and words appear in every renderer: formatting and the two languages.

Renderers never format numbers themselves, so the diagram, the terminal summary
and (later) the video and slides show the same digits.
"""

from __future__ import annotations

from typing import Any

#: Korean and English strings. Keys are the same in every language.
STRINGS: dict[str, dict[str, str]] = {
    "en": {
        "value": "value",
        "grad": "grad",
        "update": "update",
        "parameter": "parameter",
        "leaf": "leaf (requires grad)",
        "input": "input",
        "buffer": "buffer",
        "loss": "loss",
        "step": "step",
        "legend": "Legend",
        "legend_param": "parameter (learned)",
        "legend_input": "input / data",
        "legend_op": "operation",
        "legend_loss": "loss",
        "legend_value": "value = forward value",
        "legend_grad": "grad = ∂loss/∂(this node)",
        "legend_badge": "backward step: order autograd ran it",
        "legend_update": "update → value after the optimizer step",
        "legend_bad": "NaN / Inf",
        "legend_module": "folded module: its output (--expand PATH opens it)",
        "module": "module",
        "ops": "ops",
        "first_bad": "first NaN/Inf in backward",
        "edge_grad": "∂",
        "scalar": "scalar",
        "mean": "mean",
        "norm": "norm",
        "range": "range",
        "manual update": "manual update",
        "backward_calls": "backward() call",
        "forward": "Forward pass",
        "backward": "Backward pass",
        "computes": "computes",
        "upstream": "upstream",
        "local": "local",
        "passed": "passed on",
        "vjp": "vector-Jacobian product",
        "lands": "∂L/∂{x} lands on {x}.grad",
        "accumulate": "two paths meet: gradients add",
        "zero_grad": "zero_grad() clears every .grad before the next step",
        "start": "∂L/∂L = 1: backward starts at the loss",
        "title": "One training step",
        "grad_of": "gradient of",
        "folded": "module view: {full} nodes folded into {shown} (depth {depth}); --depth or --expand opens them",
        "stage_update": "Optimizer step",
        "subtitle": "forward pass → loss → backward pass → optimizer step",
        "agenda": "{pages} pages: title · forward pass · {backward} backward steps{update}",
        "agenda_update": " · optimizer step",
        "more": "… and {n} more",
        "optimizer": "optimizer",
        "no_optimizer": "no optimizer step",
        "prev": "Previous",
        "next": "Next",
        "find": "Find a node…",
        "no_match": "no node matches “{q}”",
        "hint": "Hover or click a node to see its numbers.",
        "keys": "← → step · + − zoom · click a node to pin it",
        "fit": "fit",
        "first_entries": "first entries:",
        "card_value": "{x}  (forward value)",
        "card_arriving": "∂L/∂{x}  (arriving)",
        "card_sent": "→ ∂L/∂{x}   ({local})",
        "card_grad": "{x}.grad = ∂L/∂{x}",
        "card_part": "∂L/∂{x} via {via}",
        "card_sum": "∂L/∂{x} = sum",
        "card_before": "{x}  (before)",
        "card_after": "{x}  (after the step)",
        "node_label": "{label}: {what}",
        "diagram_label": "the autograd graph; Tab moves between nodes, Enter shows a node's numbers",
        "steps_nav": "steps",
        "prev_step": "previous step",
        "next_step": "next step",
        "step_count": "step number",
        "zoom": "zoom",
        "zoom_in": "zoom in",
        "zoom_out": "zoom out",
        "zoom_fit": "fit the diagram to the window",
        "details": "details of the selected node",
        "shape": "shape",
        "kind": "kind",
        "autograd": "autograd",
        "backward_step": "backward step",
        "after": "after update",
        "before": "before update",
        "summary": "large tensor: statistics and first entries",
        "notes": "Notes",
        "the_loss": "the loss",
        "note_replayed": "The script never calls backward(): explain-graph made {made} require grad "
        "and back-propagated from {root} for this trace.",
        "note_no_backward": "The script never calls backward(): explain-graph back-propagated from {root}.",
        "note_accumulated": "{names} already held gradients from an earlier backward() (no zero_grad() in "
        "between), so after this one they hold the sum; the diagram shows the gradient of this backward() alone.",
        "note_grads_changed": "{names} changed between backward() and optimizer.step() (e.g. gradient "
        "clipping): the update used the changed gradient; the diagram shows the one backward() computed.",
        "note_light": "Large model: inside the {count} repeated blocks {span} only each block's output "
        "(value and gradient) was recorded, not every op's: --expand {first} or --full-trace records them.",
        "note_order_unknown": "The backward order inside the repeated blocks is not known here (it is "
        "worked out for models on the CPU): their nodes show no step; their blocks do.",
    },
    "ko": {
        "value": "값",
        "grad": "기울기",
        "update": "업데이트",
        "parameter": "파라미터",
        "leaf": "리프 (기울기 필요)",
        "input": "입력",
        "buffer": "버퍼",
        "loss": "손실",
        "step": "스텝",
        "legend": "범례",
        "legend_param": "파라미터 (학습됨)",
        "legend_input": "입력 / 데이터",
        "legend_op": "연산",
        "legend_loss": "손실",
        "legend_value": "값 = 순전파 결과",
        "legend_grad": "기울기 = ∂손실/∂(이 노드)",
        "legend_badge": "역전파 단계: autograd가 처리한 순서",
        "legend_update": "업데이트 → 옵티마이저 스텝 후의 값",
        "legend_bad": "NaN / Inf (비정상 값)",
        "legend_module": "접힌 모듈: 출력 값 (--expand 경로로 펼침)",
        "module": "모듈",
        "ops": "연산",
        "first_bad": "역전파 중 첫 NaN/Inf",
        "edge_grad": "∂",
        "scalar": "스칼라",
        "mean": "평균",
        "norm": "노름",
        "range": "범위",
        "manual update": "수동 업데이트",
        "backward_calls": "backward() 호출",
        "forward": "순전파",
        "backward": "역전파",
        "computes": "계산",
        "upstream": "상류 기울기",
        "local": "국소 미분",
        "passed": "전달",
        "vjp": "벡터-야코비안 곱",
        "lands": "∂L/∂{x} → {x}.grad에 저장",
        "accumulate": "두 경로가 만남: 기울기를 더함",
        "zero_grad": "zero_grad()가 다음 스텝 전에 모든 .grad를 지움",
        "start": "∂L/∂L = 1: 역전파는 손실에서 시작",
        "title": "한 번의 학습 스텝",
        "grad_of": "기울기",
        "folded": "모듈 보기: 노드 {full}개를 {shown}개로 접음 (깊이 {depth}); --depth 또는 --expand로 펼침",
        "stage_update": "옵티마이저 스텝",
        "subtitle": "순전파 → 손실 → 역전파 → 옵티마이저 스텝",
        "agenda": "{pages}쪽: 제목 · 순전파 · 역전파 {backward}단계{update}",
        "agenda_update": " · 옵티마이저 스텝",
        "more": "… 외 {n}개",
        "optimizer": "옵티마이저",
        "no_optimizer": "옵티마이저 스텝 없음",
        "prev": "이전",
        "next": "다음",
        "find": "노드 찾기…",
        "no_match": "“{q}”에 맞는 노드 없음",
        "hint": "노드에 마우스를 올리거나 클릭하면 값과 기울기가 보입니다.",
        "keys": "← → 이동 · + − 확대/축소 · 노드를 클릭하면 고정",
        "fit": "맞춤",
        "first_entries": "앞부분 값:",
        "card_value": "{x}  (순전파 값)",
        "card_arriving": "∂L/∂{x}  (들어온 기울기)",
        "card_sent": "→ ∂L/∂{x}   ({local})",
        "card_grad": "{x}.grad = ∂L/∂{x}",
        "card_part": "{via} 경로의 ∂L/∂{x}",
        "card_sum": "∂L/∂{x} = 합",
        "card_before": "{x}  (스텝 전)",
        "card_after": "{x}  (스텝 후)",
        "node_label": "{label}: {what}",
        "diagram_label": "autograd 그래프: Tab으로 노드 사이를 이동하고 Enter로 값을 봅니다",
        "steps_nav": "단계",
        "prev_step": "이전 단계",
        "next_step": "다음 단계",
        "step_count": "단계 번호",
        "zoom": "확대/축소",
        "zoom_in": "확대",
        "zoom_out": "축소",
        "zoom_fit": "창에 맞추기",
        "details": "선택한 노드의 자세한 값",
        "shape": "모양",
        "kind": "종류",
        "autograd": "autograd",
        "backward_step": "역전파 단계",
        "after": "업데이트 후",
        "before": "업데이트 전",
        "summary": "큰 텐서: 통계와 앞부분 값",
        "notes": "참고",
        "the_loss": "손실",
        "note_replayed": "스크립트가 backward()를 호출하지 않아, explain-graph가 이 추적을 위해 {made}에 "
        "requires_grad를 켜고 {root}에서 역전파했습니다.",
        "note_no_backward": "스크립트가 backward()를 호출하지 않아, explain-graph가 {root}에서 역전파했습니다.",
        "note_accumulated": "{names}에는 이전 backward()의 기울기가 남아 있었습니다(그 사이에 zero_grad() 없음). "
        "그래서 이번 backward() 뒤에는 합이 들어 있고, 그림은 이번 backward()의 기울기만 보여 줍니다.",
        "note_grads_changed": "{names}가 backward()와 optimizer.step() 사이에 바뀌었습니다(예: 기울기 클리핑). "
        "업데이트는 바뀐 기울기를 썼고, 그림은 backward()가 계산한 기울기를 보여 줍니다.",
        "note_light": "큰 모델: 반복 블록 {count}개({span}) 안에서는 연산마다가 아니라 블록의 출력(값과 기울기)만 "
        "기록했습니다. --expand {first} 또는 --full-trace로 모두 기록합니다.",
        "note_order_unknown": "반복 블록 안의 역전파 순서는 여기서 알 수 없습니다(CPU의 모델만 계산합니다). "
        "그 노드들에는 단계 번호가 없고, 블록에는 있습니다.",
    },
}

LANGS = tuple(STRINGS)

#: Significant digits of every number on screen unless ``--digits`` says otherwise.
DEFAULT_DIGITS = 4

#: Most entries per row and rows per matrix shown in a node; larger values show a summary.
MAX_COLS = 6
MAX_ROWS = 4


def stage_name(stage: str, lang: str = "en") -> str:
    """The name of a story stage (``forward``, ``backward``, ``update``) as a heading."""
    return t({"update": "stage_update"}.get(stage, stage), lang)


def optimizer_text(opt: dict[str, Any] | None, lang: str = "en", digits: int = DEFAULT_DIGITS) -> str:
    """The graph's optimizer as a short label, ``SGD lr = 0.05``; empty when there is none."""
    if not opt:
        return ""
    lr = opt.get("hyper", {}).get("lr")
    return t(opt["name"], lang) + (f" lr = {fmt_number(lr, digits)}" if isinstance(lr, (int, float)) else "")


def note_text(note: dict[str, Any], lang: str = "en") -> str:
    """One note of the graph (``{"key", "params"}``, see `explainer.graph`) as a sentence."""
    params = dict(note.get("params") or {})
    if not params.get("root"):
        params["root"] = t("the_loss", lang)
    return t(note["key"], lang).format(**params)


def notes_of(g: Any, lang: str = "en") -> list[str]:
    """The graph's notes in ``lang`` (its English ``notes`` when it has no ``note_data``)."""
    data = g.graph.get("note_data")
    if not data:
        return list(g.graph.get("notes", []))
    return [note_text(n, lang) for n in data]


def t(key: str, lang: str = "en") -> str:
    return STRINGS.get(lang, STRINGS["en"]).get(key, STRINGS["en"].get(key, key))


def fmt_number(v: Any, digits: int = DEFAULT_DIGITS) -> str:
    """``digits`` significant digits; NaN/Inf (stored as strings) shown as such."""
    if v is None:
        return "–"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, str):
        return {"nan": "NaN", "inf": "Inf", "-inf": "-Inf"}.get(v, v)
    if isinstance(v, int):
        return str(v)
    text = f"{v:.{digits}g}"
    if "e" in text:
        mant, exp = text.split("e")
        text = f"{mant}e{int(exp)}"
    return text.replace("-", "−")


def fmt_shape(shape: list[int] | tuple[int, ...], lang: str = "en") -> str:
    if not shape:
        return t("scalar", lang)
    return "×".join(str(s) for s in shape)


def _row(entries: list[Any], digits: int) -> str:
    if len(entries) > MAX_COLS:
        head = [fmt_number(e, digits) for e in entries[: MAX_COLS - 2]]
        tail = [fmt_number(e, digits) for e in entries[-1:]]
        return "[" + ", ".join(head + ["…"] + tail) + "]"
    return "[" + ", ".join(fmt_number(e, digits) for e in entries) + "]"


def value_lines(v: Any, digits: int = DEFAULT_DIGITS, lang: str = "en") -> list[str]:
    """A value from the graph schema as short lines of text for a node.

    Scalars as a number, vectors on one line, column vectors transposed (``[…]ᵀ``),
    small matrices one row per line, anything larger as a summary line.
    """
    if v is None:
        return ["–"]
    if isinstance(v, dict):
        return summary_lines(v, digits, lang)
    if not isinstance(v, list):
        return [fmt_number(v, digits)]
    depth, x = 0, v
    while isinstance(x, list) and x:
        depth, x = depth + 1, x[0]
    if depth == 1:
        return [_row(v, digits)]
    if depth == 2:
        if all(isinstance(r, list) and len(r) == 1 for r in v) and len(v) > 1:
            return [_row([r[0] for r in v], digits) + "ᵀ"]
        if len(v) <= MAX_ROWS:
            rows = [_row(r, digits) for r in v]
            if len(rows) == 1:
                return ["[" + rows[0] + "]"]
            return ["[" + rows[0]] + [" " + r for r in rows[1:-1]] + [" " + rows[-1] + "]"]
    flat = _flatten(v)
    return [_row(flat, digits) + " (flat)"]


def _flatten(v: Any) -> list[Any]:
    if isinstance(v, list):
        out: list[Any] = []
        for e in v:
            out.extend(_flatten(e))
        return out
    return [v]


def summary_lines(s: dict[str, Any], digits: int = DEFAULT_DIGITS, lang: str = "en") -> list[str]:
    line = (
        f"{t('mean', lang)} {fmt_number(s.get('mean'), digits)} · {t('norm', lang)} {fmt_number(s.get('norm'), digits)}"
    )
    rng = f"{t('range', lang)} [{fmt_number(s.get('min'), digits)}, {fmt_number(s.get('max'), digits)}]"
    lines = [line, rng]
    bad = []
    if s.get("nan"):
        bad.append(f"{s['nan']} NaN")
    if s.get("inf"):
        bad.append(f"{s['inf']} Inf")
    if bad:
        lines.append("⚠ " + ", ".join(bad))
    return lines


def value_inline(v: Any, digits: int = DEFAULT_DIGITS, lang: str = "en") -> str:
    """One-line form (terminal summary, edge labels)."""
    return " ".join(value_lines(v, digits, lang))


def value_full(v: Any, digits: int = 8) -> str:
    """Fuller text for tooltips: every stored entry with more digits."""
    if isinstance(v, dict):
        head = ", ".join(fmt_number(e, digits) for e in v.get("head", []))
        return (
            f"shape {v.get('shape')} {v.get('dtype', '')}; min {fmt_number(v.get('min'), digits)}, "
            f"max {fmt_number(v.get('max'), digits)}, mean {fmt_number(v.get('mean'), digits)}, "
            f"norm {fmt_number(v.get('norm'), digits)}, NaN {v.get('nan', 0)}, Inf {v.get('inf', 0)}; first: {head}"
        )
    if isinstance(v, list):
        return "[" + ", ".join(value_full(e, digits) for e in v) + "]"
    return fmt_number(v, digits)
