"""A resumable training run folder, shared by train-codec and train-lm: state.json, the model
and its optimizer as safetensors, each written atomically (a kill never leaves a torn file)."""
import json
import os
from pathlib import Path


def open_run(folder, threads: int, device: str | None):
    """Threads and device for a run in `folder` (created): (torch device, folder, state or None)."""
    import torch
    torch.set_num_threads(threads)
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    run = Path(folder)
    run.mkdir(parents=True, exist_ok=True)
    path = run / "state.json"
    return dev, run, json.loads(path.read_text()) if path.exists() else None


def save_weights(module, path) -> None:
    """A module's state dict -> safetensors at `path`, atomically."""
    from safetensors.torch import save_file
    path = Path(path)
    tmp = path.with_suffix(".tmp")
    save_file({k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}, str(tmp))
    os.replace(tmp, path)


def save_run(run, state: dict, model, opt) -> None:
    """model.safetensors, optim.safetensors and state.json (with the optimizer's metadata)."""
    from safetensors.torch import save_file
    run = Path(run)
    save_weights(model, run / "model.safetensors")
    tensors, state["optim_meta"] = flatten_optim(opt)
    save_file(tensors, str(run / "optim.tmp"))
    os.replace(run / "optim.tmp", run / "optim.safetensors")
    (run / "state.tmp").write_text(json.dumps(state, indent=1))
    os.replace(run / "state.tmp", run / "state.json")


def load_optim(opt, run, state: dict, device) -> None:
    """Restore the optimizer saved by save_run, if the run has one."""
    from safetensors.torch import load_file
    path = Path(run) / "optim.safetensors"
    if path.exists():
        unflatten_optim(opt, load_file(str(path), device=str(device)), state["optim_meta"])


def flatten_optim(opt) -> tuple[dict, dict]:
    """Optimizer state -> (tensors for safetensors, JSON metadata)."""
    import torch
    sd = opt.state_dict()
    tensors, meta = {}, {"param_groups": sd["param_groups"], "scalars": {}}
    for idx, st in sd["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v) and v.ndim > 0:
                tensors[f"{idx}.{k}"] = v.detach().cpu().contiguous()
            else:
                meta["scalars"][f"{idx}.{k}"] = float(v)
    return tensors, meta


def unflatten_optim(opt, tensors: dict, meta: dict) -> None:
    import torch
    state: dict = {}
    for key, v in tensors.items():
        idx, k = key.split(".", 1)
        state.setdefault(int(idx), {})[k] = v
    for key, v in meta["scalars"].items():
        idx, k = key.split(".", 1)
        state.setdefault(int(idx), {})[k] = torch.tensor(v)
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
