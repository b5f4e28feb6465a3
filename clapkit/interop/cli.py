"""``clapkit export``: a run's PDFs as a qp file, a FITS table or CSV.

The handler imports the writers (astropy, and qp for the qp format) only when it runs.
"""

from __future__ import annotations

import argparse


def _cmd_export(args: argparse.Namespace) -> int:
    from clapkit.atomic import check_writable
    from clapkit.errors import ValidationError
    from clapkit.interop.export import export_pdfs, infer_format, run_pdfs
    from clapkit.runs import load_pdfs

    # Every setting is checked before anything is read or written.
    if args.pdfs and args.method:
        raise ValidationError("--method chooses among a run's PDFs; --pdfs names one file")
    format = infer_format(args.out, args.format)
    check_writable(args.out, args.overwrite)
    if args.pdfs:
        pdfs, attrs = load_pdfs(args.pdfs)
    else:
        pdfs, attrs = run_pdfs(args.run, args.method)
    path = export_pdfs(
        pdfs,
        args.out,
        format,
        method=attrs["method"],
        columns=attrs["columns"],
        pdf_columns=args.pdf_columns,
        overwrite=args.overwrite,
    )
    print(f"wrote {pdfs.n} {attrs['method']} PDFs ({pdfs.n_bins} bins) as {format} to {path}")
    return 0


def add_export_parser(commands: argparse._SubParsersAction) -> None:
    """Add ``export`` to the ``clapkit`` parser."""
    export = commands.add_parser(
        "export",
        help="a run's PDFs as a qp file (.hdf5), a FITS table or CSV",
        description="Write one method's PDFs with point estimates (z_mean, z_median, z_mode), "
        "central 68%% and 95%% intervals (z_lo68, z_hi68, z_lo95, z_hi95) and the run's "
        "per-galaxy columns. qp: qp's HDF5 ensemble (histograms on the run's edges; "
        "qp.read reads it). fits: table PDFS with the PDF as the vector column 'pdf', and "
        "table EDGES with the bin edges. csv: the scalar columns (--pdf-columns adds the PDF).",
    )
    source = export.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", help="run directory: exports DIR/pdfs/<method>.h5")
    source.add_argument("--pdfs", metavar="FILE", help="one PDF file written by clapkit")
    export.add_argument(
        "--method", help="with --run: which method's PDFs (default: clap, CLAP's final PDFs)"
    )
    export.add_argument(
        "--format",
        help="qp, fits or csv (default: from the --out suffix: .hdf5, .fits/.fit, .csv)",
    )
    export.add_argument("--out", required=True, help="output file (qp: must end in .hdf5)")
    export.add_argument(
        "--pdf-columns",
        action="store_true",
        help="csv: add the PDF as columns p_000, p_001, ... (bin k spans edges k to k+1 of "
        "the run's grid, which FITS and qp outputs keep and CSV cannot)",
    )
    export.add_argument("--overwrite", action="store_true", help="replace an existing output")
    export.set_defaults(func=_cmd_export)
