"""How numbers and words appear in every renderer: formatting and the two languages.

Renderers never format numbers themselves, so the diagram, the terminal summary
and (later) the video and slides show the same digits.
"""

from __future__ import annotations

from typing import Any

from .defaults import DEFAULT_DIGITS

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
        "note_no_backward": "The script never calls backward(): explain-graph back-propagated from {root} "
        "(keeping its graph, and leaving every .grad as it was).",
        "note_accumulated": "{names} already held gradients from an earlier backward() (no zero_grad() in "
        "between), so after this one they hold the sum; the diagram shows the gradient of this backward() alone.",
        "note_grads_changed": "{names} changed between backward() and optimizer.step() (e.g. gradient "
        "clipping): the update used the changed gradient; the diagram shows the one backward() computed.",
        "note_grads_changed_manual": "{names} changed between backward() and the script's own update (e.g. "
        "gradient clipping): the update, and the learning rate shown, used the changed gradient; the diagram shows "
        "the one backward() computed.",
        "note_light": "Large model: inside the {count} repeated blocks {span} only each block's output "
        "(value and gradient) was recorded, not every op's: --expand {first} or --full-trace records them.",
        "note_order_unknown": "The backward order inside the repeated blocks is not known here (it is "
        "worked out for models on the CPU): their nodes show no step; their blocks do.",
        "backward_order": "backward",
        "wrote": "wrote",
        "flat": "(flat)",
        "more_in_json": "… {n} more (all in graph.json)",
        "more_in_blocks": "… {n} more inside the repeated blocks (numbers not recorded: see the note)",
        "pages": "{n} pages",
        "files": "{n} files",
        "ended": "{script} ended with {how}({status}){at} after the traced step",
        "ended_at": " at {where}",
        "waiting": "another explain-graph run is writing into {folder}: waiting for it to finish",
        "skipped_ipython": "IPython lines were skipped, never run: {lines}",
        # training over time (explainer.training)
        "tr_title": "Training {script}",
        "tr_title_compare": "{script}: optimizers compared",
        "tr_title_sweep": "{script}: learning rates compared",
        "tr_loss": "Loss at each step",
        "tr_step": "optimizer step",
        "tr_surface": "Loss surface and each run's path",
        "tr_surface_params": "the script's loss over ({x}, {y})",
        "tr_surface_pca": "2-D slice along the paths' top two principal directions ({share} of their spread)",
        "tr_surface_random": "2-D slice along two filter-normalised random directions (Li et al., 2018)",
        "tr_first_batch": "loss of the first step's data (the data changes between steps)",
        "tr_minimum": "minimum ({x}, {y})",
        "tr_minimum_grid": "lowest point on the grid",
        "tr_start": "start",
        "tr_diverged": "diverged at step {n}",
        "tr_diverged_short": "diverged",
        "tr_reached": "loss < {threshold}",
        "tr_reached_at": "step {n}",
        "tr_never": "not reached",
        "tr_run": "run",
        "tr_final": "after {n} steps",
        "tr_final_loss": "final loss",
        "tr_first_steps": "The first step of each run, with its numbers",
        "tr_over_steps": "{name} at each step",
        "tr_norm": "parameter norm ‖θ‖",
        "tr_counter": "step {n} / {total}",
        "tr_all": "All runs",
        "tr_page": "Training",
        "tr_script_lr": "the script's",
        "tr_note_swapped": "{label}: built from the script's parameter groups, lr {lr} ({source}); "
        "{defaults} at their defaults.",
        "tr_note_lr": "{label}: the script's {optimizer} with its own settings, lr {lr}.",
        "tr_note_no_surface": "No loss surface: {reason}.",
        "tr_reason_one": "the model has fewer than two trainable numbers",
        "tr_reason_large": "the model is too large to keep its trajectory",
        "tr_reason_program": "the loss of the first backward() could not be replayed",
        "tr_lr": "lr",
        "tr_note_no_video": "No training.mp4: it draws the runs on the loss surface, and this training has none.",
        "tr_theory": "theory",
        "sparse": "sparse, {n} nonzeros",
        "capped": "the {shown} nodes nearest the loss of {full}, the earlier ones as one box; --max-nodes 0 draws all",
        "note_more_backward": "{n} more backward() call(s) added to these gradients before the optimizer step "
        "(a second loss, or gradient accumulation): the update used the sum; the diagram shows the gradients of "
        "this backward() alone.",
        "note_replayed_params": "{root} was computed without a graph (torch.no_grad() or inference_mode()): "
        "explain-graph computed it again from the same parameters, data and random draws (dropout masks), and "
        "back-propagated from it; the parameters' .grad were left as they were.",
        "note_replay_differs": "The replay could not reproduce everything ({names}): it computed {replay}, the "
        "script {script}.",
        "note_stop_caught": "At {where} the script caught explain-graph's stop signal (a bare `except:` or "
        "`except BaseException:` around the step) and ran on; the trace was already complete.",
        "note_closure": "The optimizer evaluated its closure {n} times in this step (LBFGS): the diagram shows "
        "the first evaluation's forward and backward pass, and the update the whole step made.",
        "intended_inf": "{what}: set on purpose (a mask), not an error",
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
        "note_no_backward": "스크립트가 backward()를 호출하지 않아, explain-graph가 {root}에서 역전파했습니다"
        "(그래프는 유지하고 .grad는 그대로 둠).",
        "note_accumulated": "{names}에는 이전 backward()의 기울기가 남아 있었습니다(그 사이에 zero_grad() 없음). "
        "그래서 이번 backward() 뒤에는 합이 들어 있고, 그림은 이번 backward()의 기울기만 보여 줍니다.",
        "note_grads_changed": "{names}가 backward()와 optimizer.step() 사이에 바뀌었습니다(예: 기울기 클리핑). "
        "업데이트는 바뀐 기울기를 썼고, 그림은 backward()가 계산한 기울기를 보여 줍니다.",
        "note_grads_changed_manual": "{names}가 backward()와 스크립트의 직접 업데이트 사이에 바뀌었습니다(예: 기울기 "
        "클리핑). 업데이트와 표시된 학습률은 바뀐 기울기를 썼고, 그림은 backward()가 계산한 기울기를 보여 줍니다.",
        "note_light": "큰 모델: 반복 블록 {count}개({span}) 안에서는 연산마다가 아니라 블록의 출력(값과 기울기)만 "
        "기록했습니다. --expand {first} 또는 --full-trace로 모두 기록합니다.",
        "note_order_unknown": "반복 블록 안의 역전파 순서는 여기서 알 수 없습니다(CPU의 모델만 계산합니다). "
        "그 노드들에는 단계 번호가 없고, 블록에는 있습니다.",
        "backward_order": "역전파 순서",
        "wrote": "저장",
        "flat": "(펼침)",
        "more_in_json": "… 외 {n}개 (모두 graph.json에 있음)",
        "more_in_blocks": "… 반복 블록 안에 {n}개 더 (값은 기록하지 않음: 참고를 보세요)",
        "pages": "{n}쪽",
        "files": "파일 {n}개",
        "ended": "{script}가 추적한 스텝 뒤에 {how}({status})로 끝났습니다{at}",
        "ended_at": " ({where})",
        "waiting": "다른 explain-graph 실행이 {folder}에 쓰는 중입니다: 끝날 때까지 기다립니다",
        "skipped_ipython": "IPython 줄은 실행하지 않고 건너뛰었습니다: {lines}",
        "tr_title": "{script} 학습",
        "tr_title_compare": "{script}: 옵티마이저 비교",
        "tr_title_sweep": "{script}: 학습률 비교",
        "tr_loss": "스텝별 손실",
        "tr_step": "옵티마이저 스텝",
        "tr_surface": "손실 곡면과 각 실행의 경로",
        "tr_surface_params": "({x}, {y})에 대한 스크립트의 손실",
        "tr_surface_pca": "경로의 두 주성분 방향으로 자른 2차원 단면 (변화의 {share})",
        "tr_surface_random": "필터 정규화한 두 무작위 방향으로 자른 2차원 단면 (Li 외, 2018)",
        "tr_first_batch": "첫 스텝 데이터의 손실 (스텝마다 데이터가 바뀜)",
        "tr_minimum": "최솟값 ({x}, {y})",
        "tr_minimum_grid": "격자에서 가장 낮은 점",
        "tr_start": "시작점",
        "tr_diverged": "{n} 스텝에서 발산",
        "tr_diverged_short": "발산",
        "tr_reached": "손실 < {threshold}",
        "tr_reached_at": "{n} 스텝",
        "tr_never": "도달 못 함",
        "tr_run": "실행",
        "tr_final": "{n} 스텝 후",
        "tr_final_loss": "최종 손실",
        "tr_first_steps": "각 실행의 첫 스텝 (실제 값)",
        "tr_over_steps": "스텝별 {name}",
        "tr_norm": "파라미터 노름 ‖θ‖",
        "tr_counter": "스텝 {n} / {total}",
        "tr_all": "모든 실행",
        "tr_page": "학습",
        "tr_script_lr": "스크립트의 값",
        "tr_note_swapped": "{label}: 스크립트의 파라미터 그룹으로 만들었고 lr {lr} ({source}), "
        "{defaults}는 기본값입니다.",
        "tr_note_lr": "{label}: 스크립트의 {optimizer}를 그 설정 그대로, lr {lr}로 실행했습니다.",
        "tr_note_no_surface": "손실 곡면 없음: {reason}.",
        "tr_reason_one": "학습되는 수가 두 개보다 적습니다",
        "tr_reason_large": "모델이 커서 경로를 보관하지 않았습니다",
        "tr_reason_program": "첫 backward()의 손실을 다시 계산할 수 없었습니다",
        "tr_lr": "학습률",
        "tr_note_no_video": "training.mp4 없음: 실행 경로를 손실 곡면 위에 그리는데, 이 학습에는 곡면이 없습니다.",
        "tr_theory": "이론값",
        "sparse": "희소 텐서, 0이 아닌 값 {n}개",
        "capped": "노드 {full}개 중 손실에 가까운 {shown}개, 그 앞은 상자 하나로; --max-nodes 0이면 모두 그림",
        "note_more_backward": "옵티마이저 스텝 전에 backward() 호출 {n}번이 이 기울기에 더해졌습니다(두 번째 손실 또는 "
        "기울기 누적). 업데이트는 그 합을 썼고, 그림은 이번 backward()의 기울기만 보여 줍니다.",
        "note_replayed_params": "{root}는 그래프 없이 계산되었습니다(torch.no_grad() 또는 inference_mode()). "
        "explain-graph가 같은 파라미터, 데이터, 난수(드롭아웃 마스크)로 다시 계산해 역전파했고, 파라미터의 .grad는 "
        "그대로 두었습니다.",
        "note_replay_differs": "다시 계산하며 모두 재현하지는 못했습니다({names}): 재계산 값 {replay}, 스크립트의 값 "
        "{script}.",
        "note_stop_caught": "{where}에서 스크립트가 explain-graph의 중지 신호를 잡고(스텝을 감싼 `except:` 또는 "
        "`except BaseException:`) 계속 실행했습니다. 추적은 이미 끝난 뒤였습니다.",
        "note_closure": "옵티마이저가 이 스텝에서 클로저를 {n}번 평가했습니다(LBFGS). 그림은 첫 평가의 순전파와 "
        "역전파, 그리고 스텝 전체가 만든 업데이트를 보여 줍니다.",
        "intended_inf": "{what}: 의도한 값(마스크), 오류 아님",
    },
}

LANGS = tuple(STRINGS)

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


def value_lines(v: Any, digits: int = DEFAULT_DIGITS, lang: str = "en", intended: bool = False) -> list[str]:
    """A value from the graph schema as short lines of text for a node.

    Scalars as a number, vectors on one line, column vectors transposed (``[…]ᵀ``),
    small matrices one row per line, anything larger as a summary line.
    """
    if v is None:
        return ["–"]
    if isinstance(v, dict):
        return summary_lines(v, digits, lang, intended)
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
    return [_row(flat, digits) + " " + t("flat", lang)]


def _flatten(v: Any) -> list[Any]:
    if isinstance(v, list):
        out: list[Any] = []
        for e in v:
            out.extend(_flatten(e))
        return out
    return [v]


def summary_lines(
    s: dict[str, Any], digits: int = DEFAULT_DIGITS, lang: str = "en", intended: bool = False
) -> list[str]:
    """A summary's lines: mean and norm, range, then NaN/Inf counts (with a warning sign
    unless ``intended``: a mask's -inf); a sparse tensor first says how many entries it stores."""
    line = (
        f"{t('mean', lang)} {fmt_number(s.get('mean'), digits)} · {t('norm', lang)} {fmt_number(s.get('norm'), digits)}"
    )
    rng = f"{t('range', lang)} [{fmt_number(s.get('min'), digits)}, {fmt_number(s.get('max'), digits)}]"
    lines = [line, rng]
    if s.get("sparse"):
        lines.insert(0, t("sparse", lang).format(n=f"{s.get('nnz', 0):,}"))
    bad = []
    if s.get("nan"):
        bad.append(f"{s['nan']} NaN")
    if s.get("inf"):
        bad.append(f"{s['inf']} Inf")
    if bad:
        lines.append(t("intended_inf", lang).format(what=", ".join(bad)) if intended else "⚠ " + ", ".join(bad))
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
