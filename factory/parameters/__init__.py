"""Pure parameter logic: schemas, sweeps and prompt templates. No ORM, no HTTP."""
