"""The story every step-through output tells: a pure function of the graph.

`choreograph(g)` turns the graph into an ordered list of `Step`s: the forward pass
node by node, the loss, one step per node in the order autograd's backward really
ran them (with the chain rule written out with that step's numbers), the gradients
landing on the parameters, and the optimizer update. Each step carries its focus
panel (`explainer.focus`): the tensors of that step, large. The video, the slide
deck and the interactive page all perform this same list (`explainer.story`), so
they tell the same story.

No rendering here, no torch: only the graph's attributes and `explainer.text`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from .defaults import DEFAULT_DIGITS
from .focus import Card, card, panel, plain_step, update_math
from .text import fmt_number, t, value_inline

# Local derivatives of the common ops, per input position, written for students.
# {op: (output formula, [derivative w.r.t. input 0, input 1, ...])}. "g" is the upstream
# gradient. Ops not listed get the generic vector-Jacobian-product caption.
LOCAL: dict[str, tuple[str, list[str]]] = {
    "add": ("a + b", ["∂/∂a = 1", "∂/∂b = 1"]),
    "sub": ("a − b", ["∂/∂a = 1", "∂/∂b = −1"]),
    "rsub": ("b − a", ["∂/∂a = −1", "∂/∂b = 1"]),
    "mul": ("a · b", ["∂/∂a = b", "∂/∂b = a"]),
    "div": ("a / b", ["∂/∂a = 1/b", "∂/∂b = −a/b²"]),
    "pow": ("aⁿ", ["∂/∂a = n·aⁿ⁻¹", "∂/∂n = aⁿ·ln a"]),
    "neg": ("−a", ["∂/∂a = −1"]),
    "mm": ("A · B", ["∂/∂A = g · Bᵀ", "∂/∂B = Aᵀ · g"]),
    "matmul": ("A · B", ["∂/∂A = g · Bᵀ", "∂/∂B = Aᵀ · g"]),
    "bmm": ("A · B", ["∂/∂A = g · Bᵀ", "∂/∂B = Aᵀ · g"]),
    "addmm": ("b + x · Wᵀ", ["∂/∂b = Σ_rows g", "∂/∂x = g · W", "∂/∂Wᵀ = xᵀ · g"]),
    "linear": ("x · Wᵀ + b", ["∂/∂x = g · W", "∂/∂W = gᵀ · x", "∂/∂b = Σ_rows g"]),
    "t": ("Wᵀ", ["∂/∂W = gᵀ"]),
    "transpose": ("aᵀ", ["∂/∂a = gᵀ"]),
    "sum": ("Σ a", ["∂/∂a = 1 (g copied to every entry)"]),
    "mean": ("mean(a)", ["∂/∂a = 1/n"]),
    "relu": ("max(a, 0)", ["∂/∂a = 1 where a > 0, else 0"]),
    "sigmoid": ("σ(a)", ["∂/∂a = σ(a)·(1 − σ(a))"]),
    "tanh": ("tanh a", ["∂/∂a = 1 − tanh²a"]),
    "exp": ("eᵃ", ["∂/∂a = eᵃ"]),
    "log": ("ln a", ["∂/∂a = 1/a"]),
    "softmax": ("softmax(a)", ["∂/∂a = s ⊙ (g − Σ g⊙s)"]),
    "log_softmax": ("log softmax(a)", ["∂/∂a = g − softmax(a)·Σg"]),
    "nll_loss": ("−mean(logp[target])", ["∂/∂logp = −1/N at the target class, 0 elsewhere"]),
    "mse_loss": ("mean((pred − y)²)", ["∂/∂pred = 2(pred − y)/N", "∂/∂y = −2(pred − y)/N"]),
    "l1_loss": ("mean(|pred − y|)", ["∂/∂pred = sign(pred − y)/N", "∂/∂y = −sign(pred − y)/N"]),
    "binary_cross_entropy": ("−mean(y·ln p + (1−y)·ln(1−p))", ["∂/∂p = (p − y) / (p(1 − p)·N)"]),
    "binary_cross_entropy_with_logits": ("−mean(y·ln σ(z) + (1−y)·ln(1−σ(z)))", ["∂/∂z = (σ(z) − y)/N"]),
    "cross_entropy": ("−mean(log softmax(z)[target])", ["∂/∂z = (softmax(z) − one_hot)/N"]),
}


@dataclass(frozen=True)
class Step:
    """One beat of the story.

    Attributes
    ----------
    kind
        ``title`` | ``forward`` | ``loss`` | ``backward`` | ``accumulate`` | ``update`` | ``zero_grad``.
    stage
        ``title`` | ``forward`` | ``backward`` | ``update``: for sections and slide pages.
    node
        The node this step is about (None for whole-graph steps).
    edges
        Edges that light up: forward data flow, or the gradient flowing back along them.
    lines
        The caption, one line each, numbers already formatted.
    numbers
        The raw graph values the caption shows, by role (tests compare them to the graph).
    panel
        The focus panel: this step's tensors, large (`explainer.focus.Card`).
    """

    kind: str
    stage: str
    node: str | None
    edges: tuple[tuple[str, str], ...] = ()
    lines: tuple[str, ...] = ()
    numbers: dict[str, Any] = field(default_factory=dict)
    panel: tuple[Card, ...] = ()


def forward_order(g: nx.DiGraph) -> list[str]:
    """Node ids in forward order: the graph's insertion order (ids are numbered that way,
    and folded views insert module nodes where they ran)."""
    return list(g.nodes)


def _order(n: str) -> tuple[int, str]:
    """A deterministic sort key for ids, numeric ones (n12) by number, folded ones (m:path) after."""
    return (int(n[1:]), "") if n[1:].isdigit() else (1 << 30, n)


def _label(g: nx.DiGraph, n: str) -> str:
    return g.nodes[n]["label"]


def _v(v: Any, digits: int, lang: str) -> str:
    """A value in a caption: numbers, or for a large tensor its shape and norm (short)."""
    if isinstance(v, dict) and v.get("summary"):
        shape = "×".join(str(s) for s in v.get("shape", []))
        bad = f", {v['nan']} NaN" if v.get("nan") else ""
        return f"⟨{shape}, {t('norm', lang)} {fmt_number(v.get('norm'), digits)}{bad}⟩"
    return value_inline(v, digits, lang)


def choreograph(g: nx.DiGraph, lang: str = "en", digits: int = DEFAULT_DIGITS) -> list[Step]:
    """The ordered steps for graph ``g``. Pure: same graph, same steps."""
    steps: list[Step] = []
    loss_id = g.graph["loss"]
    loss = g.nodes[loss_id]
    title = g.graph.get("source") or t("title", lang)
    lines = [title, f"{t('loss', lang)} = {_v(loss['value'], digits, lang)}"]
    fold = g.graph.get("fold")
    if fold:
        # A folded view (explainer.fold): say so, and how to see everything.
        key = "capped" if fold.get("capped") else "folded"
        lines.append(t(key, lang).format(full=fold["full_nodes"], shown=g.number_of_nodes(), depth=fold["depth"]))
    steps.append(Step("title", "title", None, lines=tuple(lines), numbers={"loss": loss["value"]}))
    # 1. forward, each op with the inputs it consumes appearing just before it
    for n in forward_order(g):
        d = g.nodes[n]
        if n == loss_id:
            continue
        if d["kind"] in ("op", "module"):
            ins = tuple((u, n) for u in sorted(g.predecessors(n), key=_order))
            op = d.get("op") or ""
            formula = LOCAL.get(op, (None, []))[0]
            if d["kind"] == "module":
                head = f"{d['label']} = {t('module', lang)} {d.get('module_type') or ''}(…)"
            else:
                head = f"{d['label']} = {formula or op + '(…)'}" + (f"   ({op})" if d["label"] != op else "")
            cards = panel([card("value", head, d["value"], digits, lang)])
            steps.append(
                Step(
                    "forward",
                    "forward",
                    n,
                    ins,
                    (head, f"= {_v(d['value'], digits, lang)}"),
                    {"value": d["value"]},
                    cards,
                )
            )
        elif not any(True for _ in g.predecessors(n)):
            cards = panel([card("value", t("card_value", lang).format(x=d["label"]), d["value"], digits, lang)])
            steps.append(
                Step(
                    "forward",
                    "forward",
                    n,
                    (),
                    (f"{d['label']} = {_v(d['value'], digits, lang)}",),
                    {"value": d["value"]},
                    cards,
                )
            )
    ins = tuple((u, loss_id) for u in sorted(g.predecessors(loss_id), key=_order))
    steps.append(
        Step(
            "loss",
            "forward",
            loss_id,
            ins,
            (f"{loss['label']} = {loss.get('op') or ''} = {_v(loss['value'], digits, lang)}", t("start", lang)),
            {"value": loss["value"], "grad": loss["grad"]},
            panel(
                [
                    card("value", f"{loss['label']} = {loss.get('op') or ''}", loss["value"], digits, lang),
                    card("grad", "∂L/∂L", loss["grad"], digits, lang),
                ]
            ),
        )
    )
    # 2. backward, in the order autograd ran the nodes
    for n in g.graph.get("backward_order", []):
        steps.extend(_backward_steps(g, n, lang, digits))
    # 3. optimizer update and zero_grad
    opt = g.graph.get("optimizer")
    if opt:
        for n in forward_order(g):
            if g.nodes[n].get("update"):
                steps.append(_update_step(g, n, opt, lang, digits))
        steps.append(Step("zero_grad", "update", None, (), (t("zero_grad", lang),), {}))
    return steps


def _update_step(g: nx.DiGraph, n: str, opt: dict[str, Any], lang: str, digits: int) -> Step:
    """One parameter's optimizer step: the rule with its numbers, and the panel of its arithmetic."""
    d = g.nodes[n]
    upd = d["update"]
    label, lr = d["label"], upd.get("lr")
    math_ = update_math(upd["before"], d["grad"], upd["after"], lr, opt, label, digits)
    head = f"{t('stage_update', lang)} ({t(opt['name'], lang)})"
    lines: tuple[str, ...]
    if _plain_gradient_step(upd, d["grad"], lr):
        lines = (
            head,
            f"{label} ← {label} − η·∂L/∂{label}",
            f"= {_v(upd['before'], digits, lang)} − {fmt_number(lr, digits)} × {_v(d['grad'], digits, lang)}",
            f"= {_v(upd['after'], digits, lang)}",
        )
    else:
        lines = (head, math_.rule, f"= {_v(upd['after'], digits, lang)}")
    cards = [card("value", t("card_before", lang).format(x=label), upd["before"], digits, lang)]
    for i, (title, value) in enumerate(math_.parts):
        cards.append(card("grad" if i == 0 else "state", title, value, digits, lang))
    cards.append(card("update", t("card_after", lang).format(x=label), upd["after"], digits, lang))
    numbers = {
        "before": upd["before"],
        "after": upd["after"],
        "grad": d["grad"],
        "lr": lr,
        "parts": {title: value for title, value in math_.parts},
    }
    return Step("update", "update", n, (), lines, numbers, panel(cards))


def _plain_gradient_step(upd: dict[str, Any], grad: Any, lr: float | None) -> bool:
    """Is ``after == before − lr × grad`` (to float32 rounding)?

    Then the caption may write the update as plain gradient descent. Momentum, weight
    decay, Adam, clipped gradients... all give another ``after``: the caption then names
    the optimizer's rule instead of showing arithmetic that does not add up.
    """
    return plain_step(upd["before"], grad, upd["after"], lr)


def _backward_steps(g: nx.DiGraph, n: str, lang: str, digits: int) -> list[Step]:
    d = g.nodes[n]
    out: list[Step] = []
    label = d["label"]
    # Where a node's output fed several consumers, its gradient is their sum: show it.
    incoming = [(n, v) for v in sorted(g.successors(n), key=_order) if g.edges[n, v].get("grad") is not None]
    if len(incoming) > 1:
        parts = " + ".join(_v(g.edges[e]["grad"], digits, lang) for e in incoming)
        out.append(
            Step(
                "accumulate",
                "backward",
                n,
                tuple(incoming),
                (f"∂L/∂{label}: {t('accumulate', lang)}", f"{parts} = {_v(d['grad'], digits, lang)}"),
                {"parts": [g.edges[e]["grad"] for e in incoming], "grad": d["grad"]},
                panel(
                    [
                        card(
                            "grad",
                            t("card_part", lang).format(x=label, via=g.nodes[v]["label"]),
                            g.edges[n, v]["grad"],
                            digits,
                            lang,
                        )
                        for _, v in incoming
                    ]
                    + [card("grad", t("card_sum", lang).format(x=label), d["grad"], digits, lang)]
                ),
            )
        )
    if d["kind"] in ("param", "leaf"):
        out.append(
            Step(
                "backward",
                "backward",
                n,
                tuple(incoming),
                (t("lands", lang).format(x=label), f"{label}.grad = {_v(d['grad'], digits, lang)}"),
                {"grad": d["grad"]},
                panel(
                    [
                        card("value", t("card_value", lang).format(x=label), d["value"], digits, lang),
                        card("grad", t("card_grad", lang).format(x=label), d["grad"], digits, lang),
                    ]
                ),
            )
        )
        return out
    op = d.get("op") or ""
    formula, locals_ = LOCAL.get(op, (None, []))
    if d["kind"] == "module":
        what = f"{t('module', lang)} {d.get('module_type') or ''}".strip()
    else:
        what = op
    head = f"{label}" + (f" = {formula}" if formula else f" ({what})")
    lines = [head, f"{t('upstream', lang)}: ∂L/∂{label} = {_v(d['grad'], digits, lang)}"]
    cards = [
        card("value", t("card_value", lang).format(x=head), d["value"], digits, lang),
        card("grad", t("card_arriving", lang).format(x=label), d["grad"], digits, lang),
    ]
    sent = {}
    preds = sorted(g.predecessors(n), key=_order)
    edges = []
    for u in preds:
        e = g.edges[u, n]
        if e.get("grad") is None:
            continue
        edges.append((u, n))
        slot = e.get("slots", [0])[0]
        local = locals_[slot] if slot < len(locals_) else None
        if local is None:
            local = t("vjp", lang)
        src = g.nodes[u]["label"]
        lines.append(f"→ ∂L/∂{src} = ∂L/∂{label} × ({local}) = {_v(e['grad'], digits, lang)}")
        cards.append(card("grad", t("card_sent", lang).format(x=src, local=local), e["grad"], digits, lang))
        sent[u] = e["grad"]
    out.append(
        Step(
            "backward",
            "backward",
            n,
            tuple(edges),
            tuple(lines),
            {"grad": d["grad"], "sent": sent, "op": op},
            panel(cards),
        )
    )
    return out
