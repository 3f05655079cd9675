"""Text data for language modelling: documents, the train/validation split, the BPE tokenizer and
its cache (`corpus`), and evaluation per context length (`lm_eval`)."""
