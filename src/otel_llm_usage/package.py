_instruments = ("langchain-core >= 1.0",)
