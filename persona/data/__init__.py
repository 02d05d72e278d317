"""Training data and training: chat JSONL, generated data, screening, LoRA fine-tuning."""
