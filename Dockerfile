FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md gunicorn.conf.py ./
COPY server ./server
COPY profiles ./profiles
COPY mappings ./mappings
COPY loaders ./loaders
RUN pip install --no-cache-dir .
ENV DATABASE_URL=sqlite:////data/sharedcare.db
EXPOSE 8080
CMD ["sh", "-c", "sharedcare db upgrade && exec gunicorn -c gunicorn.conf.py 'server.app:create_app()'"]
