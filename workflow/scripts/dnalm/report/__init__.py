"""Every figure of the workflow (rules in figures.smk and the figure steps of other stages)."""
