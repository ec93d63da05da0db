"""Reading text with a loaded model: the prompt layout every mode and trainer shares, the
engine (score and reason modes), the shared-prefix cache, the JSON grammar, evaluation on a
labelled file."""
