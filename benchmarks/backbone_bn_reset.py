"""A diagnostic for issue 19, not a product option: a copy of a backbone file with its BatchNorm
running statistics reset (mean 0, variance 1), so that a run started from it with
``model.init=FILE`` estimates them from its own data only. Does the pretrained start lose on a
dataset because of the loaded statistics, or because of the weights? (Only evaluations can tell:
training normalises by each batch's statistics, so the weights follow the same path either way;
docs/results.md, "DeepPCB and the synthetic DAGM set, three seeds".)

    python -m benchmarks.backbone_bn_reset --out runs/bb/lw-0.35-c1-bnreset
    python -m benchmarks.pretraining_recipe --budget 4m --only dagm-synth --out runs/init \\
        --seeds 0 1 2 --jobs 2 --variant pretrained model.init=pretrained \\
        --variant pre-bnreset model.init=runs/bb/lw-0.35-c1-bnreset.json
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from torch import nn

from lwcnn.models.registry import create_model
from lwcnn.pretrained import bundled_backbone, load_backbone, read_backbone, save_backbone

#: What save_backbone writes into a card itself; the rest of the source card is kept.
_WRITTEN = ("format", "sha256", "lwcnn_version", "created")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="lw@0.35")
    parser.add_argument("--channels", type=int, default=1, choices=(1, 3))
    parser.add_argument("--source", type=Path, help="a backbone card (default: the bundled one)")
    parser.add_argument("--out", type=Path, required=True, help="the copy: PATH.json, PATH.safetensors")
    args = parser.parse_args(argv)
    model = create_model(args.model, "seg", in_channels=args.channels)
    source = args.source or bundled_backbone(model.spec.family, model.spec.width, args.channels)
    if source is None:
        raise SystemExit(f"no bundled backbone for {args.model}, {args.channels} channel(s): give --source")
    load_backbone(model, source)
    layers = [m for m in model.backbone.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for layer in layers:
        layer.reset_running_stats()
    card = {k: v for k, v in read_backbone(source)[1].items() if k not in _WRITTEN}
    reset = f"from {source.name}: BatchNorm running statistics reset (a diagnostic)"
    card["derived"] = f"{card['derived']}; {reset}" if card.get("derived") else reset
    written = save_backbone(args.out, model.backbone, card)
    print(f"{written}: {len(layers)} BatchNorm layers reset")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
