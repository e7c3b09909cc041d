"""The core's products of one training step of a model, each a shape the MCU's product
micro-benchmark times on its own (the `products` probe through PRODUCT, docs/serial-protocol.md;
`skip2bench mcu-speed` under semihosting): the same code on the board (targets/c/mcu/product.c).

Grouped by name: dense (ft-all's products: the layers' forward, dW, dx), rank (the rank-r
adapter products x A, du, dA), adapter (lora-all's other adapter products), skip (the skip
adapters' stacked B). A shape that repeats within a group is timed once, under its first name."""
KINDS = {"nn": 0, "tn": 1, "nt": 2}
X0 = {"": 0, "a": 1, "b": 2}  # the operand whose rows are the batch's, read in place where they lie


def _product(name: str, kind: str, m: int, k: int, n: int, x0: str = "") -> dict:
    return {"name": name, "kind": kind, "m": m, "k": k, "n": n, "x0": x0}


def step_products(sizes: list, batch: int, rank: int) -> list[dict]:
    """The products of one step of the MLP `sizes`, batch `batch`, adapters of rank `rank`."""
    B, R, layers, C = batch, rank, list(zip(sizes[:-1], sizes[1:])), sizes[-1]
    x0 = lambda l, which: which if l == 0 else ""  # noqa: E731  (layer 0's input is the batch)
    out = []
    for l, (i, o) in enumerate(layers):
        out.append(_product(f"dense:x{l}.W{l}", "nn", B, i, o, x0(l, "a")))
        out.append(_product(f"dense:dW{l}=x{l}^T.da", "tn", i, B, o, x0(l, "a")))
        if l:
            out.append(_product(f"dense:dx{l}=da.W{l}^T", "nt", B, o, i))
    for l, (i, o) in enumerate(layers):
        out.append(_product(f"rank:x{l}.A{l}", "nt", B, i, R, x0(l, "a")))
        out.append(_product(f"rank:du{l}=da.B{l}^T", "nt", B, o, R))
        out.append(_product(f"rank:dA{l}=du^T.x{l}", "tn", R, B, i, x0(l, "b")))
    for l, (i, o) in enumerate(layers):
        out.append(_product(f"adapter:u.B{l}", "nn", B, R, o))
        out.append(_product(f"adapter:dB{l}=u^T.da", "tn", R, B, o))
        if l:
            out.append(_product(f"adapter:du.A{l}^T", "nn", B, R, i))
    L = len(layers)
    out += [_product("skip:u.Bstack", "nn", B, L * R, C), _product("skip:dBstack=u^T.dz", "tn", L * R, B, C),
            _product("skip:du=dz.Bstack^T", "nt", B, C, L * R)]
    seen, unique = set(), []
    for p in out:
        shape = (group(p["name"]), *code(p))
        if shape not in seen:
            seen.add(shape)
            unique.append(p)
    return unique


def macs(p: dict) -> int:
    return p["m"] * p["k"] * p["n"]


def group(name: str) -> str:
    """A product's group: "dense" of "512-96-96-2/dense:x0.W0"."""
    return name.split("/")[-1].split(":")[0]


def code(p: dict) -> tuple[int, int, int, int, int]:
    """The shape as PRODUCT and the semihosting bench take it: kind, x0, m, k, n."""
    return KINDS[p["kind"]], X0[p["x0"]], p["m"], p["k"], p["n"]
