"""Campaign and workcell files shipped with the project (data only)."""
