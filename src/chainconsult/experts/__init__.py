"""The public expert directory and the vocabularies experts are described with."""
