"""Writer identification: the classifier, the embedding Siamese, the enrollment gallery and the
classroom comparison. No Gradio here."""
