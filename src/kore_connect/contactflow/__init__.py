"""Amazon Connect contact flows: the flow language (`language`), typed and validated flows
(`model`), and the default kore-connect flow (`render`)."""
