"""Pretraining data: instances from documents, masked-LM masking, MindRecord datasets and their reader."""
