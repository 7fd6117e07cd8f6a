"""`ensemble bench`: every strategy side by side on a scored dataset, with accuracy, cost and latency.

``datasets`` loads items with gold answers; ``scoring`` scores a record's output against its gold;
``arms`` turns a bench config into the runs to compare; ``runner`` runs them through ``Session``;
``stats``, ``report`` and ``chart`` turn the records into ``summary.json``, ``report.md`` and a chart.
"""
