"""Text data for language modelling: documents, the train/validation split, the BPE tokenizer and
its cache (`corpus`, `tokenized`); evaluation per context length is `lengthgen.lm_eval`."""
