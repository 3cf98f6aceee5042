"""pytest configuration for the whole repository: offline hub, no torch compilation."""
import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["NO_TORCH_COMPILE"] = "1"
