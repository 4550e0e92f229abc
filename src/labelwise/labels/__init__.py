"""Label core: task inference, the label schema, cell parsing. Imports nothing heavy."""
