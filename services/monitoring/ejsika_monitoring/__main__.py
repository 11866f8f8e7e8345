from .app import service

service.serve()
