FROM python:3.11-slim
WORKDIR /app
# The pinned, hash-checked dependencies first (their layer is kept while only the code changes), then the project.
COPY requirements.lock ./
RUN pip install --no-cache-dir --require-hashes -r requirements.lock
COPY pyproject.toml README.md LICENSE gunicorn.conf.py ./
COPY server ./server
COPY profiles ./profiles
COPY mappings ./mappings
COPY loaders ./loaders
RUN pip install --no-cache-dir --no-deps .
ENV DATABASE_URL=sqlite:////data/sharedcare.db
EXPOSE 8080
CMD ["sh", "-c", "sharedcare db upgrade && exec gunicorn -c gunicorn.conf.py 'server.app:create_app()'"]
