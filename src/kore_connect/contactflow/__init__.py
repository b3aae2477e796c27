"""Amazon Connect contact flows: the flow language (`language`), typed and validated flows
(`model`), the placeholders deployment templates leave in them (`placeholders`), and the default
kore-connect flow (`render`)."""
