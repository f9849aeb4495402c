"""A class's grades as files: grades.csv, the text report, the figures."""
