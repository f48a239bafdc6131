from fulfilkit.settings import ServiceSettings


class StockSettings(ServiceSettings):
    pass
