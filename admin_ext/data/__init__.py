"""Import and export of admin data as CSV, XLSX and JSON."""
