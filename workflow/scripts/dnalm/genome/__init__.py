"""The data stage (rules download, cds, splits): sample sheet, downloads, GBFF/GFF/CDS-FASTA
reading, CDS extraction and QC, leakage-free splits."""
