import pytest
pytestmark = pytest.mark.django_db

def test_smoke(new_study, clients):
    study = new_study()
    c = clients["owner"]
    for url in ["design/", "design/metadata/", "design/texts/", "design/design/", "design/questions/",
                "design/attention/", "design/recruitment/", "design/analysis/", "design/blocks/",
                "plan/", "spec.yaml", "duplicate/"]:
        r = c.get(f"/studies/{study.slug}/{url}")
        assert r.status_code == 200, (url, r.content.decode()[:3000])
    print(c.get(f"/studies/{study.slug}/design/design/").content.decode())
